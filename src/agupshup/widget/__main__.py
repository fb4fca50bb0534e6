"""``python -m agupshup.widget --base-url URL [--port 8090] [--read-only]``: serve the widget."""

from agupshup.cli import widget_main

if __name__ == "__main__":
    widget_main()
