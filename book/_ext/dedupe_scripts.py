"""Keep each page's scripts unique.

sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = ...``) once
per reading phase, so pages of a Jupyter Book 1 build can carry it twice and the second copy
throws "Identifier 'THEBE_JS_URL' has already been declared" in the reader's browser.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # The same script registered twice (at another priority, or with filename "" instead
        # of None) is still the same script.
        key = (getattr(script, "filename", script) or None, repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
