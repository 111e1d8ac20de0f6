/** The colours Chart.js needs that follow the theme (the CSS variables cannot reach a canvas). */
export function chartTheme(theme) {
  return theme === 'dark'
    ? { grid: 'rgba(148, 163, 184, 0.12)', ticks: '#8b98ad', tooltipBg: '#1b2230', tooltipFg: '#e6ebf3' }
    : { grid: 'rgba(15, 23, 42, 0.07)', ticks: '#6b7789', tooltipBg: '#0f172a', tooltipFg: '#f8fafc' };
}
