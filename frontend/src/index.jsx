import { StrictMode, startTransition } from 'react';
import { createRoot } from 'react-dom/client';
import './styles/fonts.css';
import './styles/app.css';
import App from './App.jsx';

// As a transition, the first render is done in slices that yield to the browser every few ms,
// rather than in one task (80-140 ms on a busy machine, the page's longest after the bundle).
startTransition(() => {
  createRoot(document.getElementById('root')).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
});
