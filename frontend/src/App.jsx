import Dashboard from './components/Dashboard.jsx';
import SignIn from './components/SignIn.jsx';
import { useAuth } from './hooks/useAuth.js';
import { useTheme } from './hooks/useTheme.js';

const CHART_SECONDS = Number(import.meta.env.VITE_CHART_SECONDS) || 60;

export default function App() {
  const { theme, toggle } = useTheme();
  const auth = useAuth();
  if (auth.needed) return <SignIn onSignIn={auth.signIn} />;
  // Keyed by the token: signing in (again) starts the stream afresh with it.
  return <Dashboard key={auth.token ?? 'anonymous'} theme={theme} onToggleTheme={toggle} chartSeconds={CHART_SECONDS} />;
}
