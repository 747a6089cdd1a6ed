"""Knowledge articles, blog posts, forum threads and search, served from the instance."""

from portico_runtime.content.views import routes

__all__ = ["routes"]
