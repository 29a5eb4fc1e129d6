"""The Textual dashboard: reads State on a timer, one widget a module (see docs/dashboard.md)."""
