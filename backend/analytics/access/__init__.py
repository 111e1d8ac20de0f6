"""Who may do what: producer keys (keys.py), viewer tokens (tokens.py), and the checks that
apply them to REST and /metrics (guard.py). Socket.IO applies the viewer's sources itself."""
