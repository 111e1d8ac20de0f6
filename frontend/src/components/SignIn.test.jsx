import { act, render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { requireSignIn, resetAuth } from '../api/auth.js';
import { fakeIo } from '../test/fakeSocket.js';
import { server } from '../test/server.js';
import App from '../App.jsx';

const fake = vi.hoisted(() => ({ current: null }));
vi.mock('socket.io-client', () => ({ io: (...args) => fake.current.io(...args) }));

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());
beforeEach(() => {
  fake.current = fakeIo();
  resetAuth();
  window.history.replaceState(null, '', '/');
});

function refuseSocket() {
  const refused = new Error('unauthorized');
  refused.data = { code: 'unauthorized', message: 'a viewer token is required' };
  act(() => fake.current.last().fire('connect_error', refused));
}

describe('sign-in', () => {
  it('shows the dashboard while the backend asks for nothing', async () => {
    render(<App />);
    await waitFor(() => expect(fake.current.last().connectCalls).toBe(1));
    expect(screen.queryByRole('heading', { name: 'Sign in to Pulse' })).not.toBeInTheDocument();
    expect(fake.current.last().lastAuth.token).toBeUndefined();
  });

  it('asks for a token when the socket is refused, then reconnects with the pasted one', async () => {
    render(<App />);
    await waitFor(() => expect(fake.current.last().connectCalls).toBe(1));
    refuseSocket();
    expect(await screen.findByRole('heading', { name: 'Sign in to Pulse' })).toBeInTheDocument();
    const before = fake.current.sockets.length;
    await userEvent.type(screen.getByLabelText('Viewer token'), 'pasted.viewer.token');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(fake.current.sockets.length).toBeGreaterThan(before));
    await waitFor(() => expect(fake.current.last().connectCalls).toBe(1));
    expect(fake.current.last().lastAuth.token).toBe('pasted.viewer.token');
    expect(sessionStorage.getItem('pulse.viewerToken')).toBe('pasted.viewer.token');
    expect(screen.queryByRole('heading', { name: 'Sign in to Pulse' })).not.toBeInTheDocument();
  });

  it('returns to the sign-in screen when the token is refused later', async () => {
    render(<App />);
    act(() => requireSignIn());
    await userEvent.type(await screen.findByLabelText('Viewer token'), 'soon.expired.token');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(fake.current.last().connectCalls).toBe(1));
    refuseSocket();
    expect(await screen.findByRole('heading', { name: 'Sign in to Pulse' })).toBeInTheDocument();
    expect(sessionStorage.getItem('pulse.viewerToken')).toBeNull();
  });
});
