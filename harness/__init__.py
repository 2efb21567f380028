"""A real server and a real browser on loopback, shared by the browser tests and the load benchmark."""
