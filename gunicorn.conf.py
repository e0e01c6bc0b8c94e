"""Read by every gunicorn started in this directory (gunicorn loads ./gunicorn.conf.py unless ``-c`` names another).

gunicorn >= 25.1 opens a control socket for ``gunicornc`` at $XDG_RUNTIME_DIR/gunicorn.ctl, else
~/.gunicorn/gunicorn.ctl: one path for all of a user's gunicorns, so a second instance takes it over from
the first, and stopping either deletes it. Nothing here uses gunicornc, so no instance opens one. The
compose file, the image and the bench also pass --no-control-socket, as they may start elsewhere.
"""

control_socket_disable = True
