import { useCallback, useEffect, useState } from 'react';
import { authState, onAuthChange, signIn } from '../api/auth.js';

/** The viewer token's state ({ token, needed }) and signIn(token); re-renders when either changes. */
export function useAuth() {
  const [state, setState] = useState(authState);
  useEffect(() => onAuthChange(setState), []);
  const submit = useCallback((token) => signIn(token), []);
  return { ...state, signIn: submit };
}
