import { useState } from 'react';

/** Shown when the backend asks for a viewer token: paste one, kept for this tab only. */
export default function SignIn({ onSignIn }) {
  const [token, setToken] = useState('');
  const submit = (e) => {
    e.preventDefault();
    if (token.trim()) onSignIn(token);
  };
  return (
    <main className="signin">
      <form className="signin__card" onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to Pulse</h1>
        <p className="muted">
          This dashboard needs a viewer token. Ask whoever runs it for one (they mint it with{' '}
          <code>python backend/manage.py new-token</code>). It is kept in this tab only and forgotten when the tab closes
          or the backend refuses it.
        </p>
        <label htmlFor="signin-token">Viewer token</label>
        <textarea
          id="signin-token"
          data-testid="signin-token"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          rows={4}
          spellCheck={false}
          autoComplete="off"
          required
        />
        <button type="submit" className="button" disabled={!token.trim()}>
          Sign in
        </button>
      </form>
    </main>
  );
}
