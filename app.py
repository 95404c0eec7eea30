"""The frontend, for ``gunicorn app:app`` and ``python app.py`` (Flask's dev server, local hacking only).

Production: ``gunicorn --config python:modelops.web.gunicorn_conf 'modelops.web:create_app()'``.
``FLASK_DEBUG=1 python app.py`` turns on reloading and the debugger.
"""

import os

from modelops.web import create_app

app = create_app()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5002")), debug=os.environ.get("FLASK_DEBUG") == "1")
