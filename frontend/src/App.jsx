import Dashboard from './components/Dashboard.jsx';
import { useTheme } from './hooks/useTheme.js';

const CHART_SECONDS = Number(import.meta.env.VITE_CHART_SECONDS) || 60;

export default function App() {
  const { theme, toggle } = useTheme();
  return <Dashboard theme={theme} onToggleTheme={toggle} chartSeconds={CHART_SECONDS} />;
}
