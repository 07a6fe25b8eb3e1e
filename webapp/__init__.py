"""The suite's local web app (scripts/app.py): one Gradio tab per family whose models are found in a folder.

- ``discover.py``: finds model, bundle and index directories and the key each is served under.
- ``tabs/``: one module per tab and the registry (``tabs/__init__.py``) that maps those keys to tabs.
- ``app.py``: builds the ``gr.Blocks`` from the tabs that have models, and launches it on localhost.

It sits on top of the layers, like scripts/: it may import any family. Gradio is kept from phoning home here,
before anything imports it.
"""

import os

# Gradio reads these when it is imported and when the app launches: no usage analytics, no update check.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("GRADIO_SSR_MODE", "False")
