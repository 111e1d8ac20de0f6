import { Chart, Filler, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';

// Only what the line charts use, so the bundle carries no other controllers.
Chart.register(LineController, LineElement, PointElement, LinearScale, Tooltip, Filler);

Chart.defaults.font.family = "'Inter Variable', system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
