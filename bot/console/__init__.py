"""The operator console at /admin: server-rendered pages (Jinja2, htmx) over the same storage services as
the admin API. auth owns sessions, CSRF and roles; pages owns rendering; each screen is a module."""
