"""The admin and officer web UI, served by the service itself at ``/admin``.

It is a set of static files (HTML, CSS and JavaScript modules, no build step, nothing fetched
from another origin) that signs the official in with authorization code + PKCE and then does
everything through the public REST API with a bearer token. No cookie carries the session, so
no request can ride on one from another site (CSRF); the strict Content-Security-Policy keeps
scripts to the service's own files.
"""
