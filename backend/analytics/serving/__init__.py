"""The gevent WSGI server with bounds: who may connect (admission), and how long a client may take
to send a request, to keep sending its body, or to sit idle between requests (handler)."""
