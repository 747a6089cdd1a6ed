"""The kinds of content: the feature that brings each, where it is served, its instance name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str  # the instance API's name (content/{name})
    feature: str  # the template feature that brings it (operator/portico/core/features.py)
    path: str  # where the runtime serves it
    title_key: str  # translation key of the list page's title
    label_key: str  # translation key naming one item (search results)
    interaction: str  # the interaction type a view becomes (interactions/model.py)


ARTICLES = Kind(
    "articles", "knowledge-management", "/knowledge", "knowledge", "kindArticle",
    "KnowledgeArticleViewed",
)  # fmt: skip
BLOG_POSTS = Kind("blogposts", "blogs", "/blogs", "blogs", "kindBlogPost", "BlogPostViewed")
FORUM_THREADS = Kind(
    "forumthreads", "forums", "/forums", "forums", "kindForumThread", "ForumThreadViewed"
)
KINDS = (ARTICLES, BLOG_POSTS, FORUM_THREADS)
BY_NAME = {k.name: k for k in KINDS}


def offered(features: tuple[str, ...]) -> tuple[Kind, ...]:
    """The kinds a portal with FEATURES serves (a template without forums has no forum pages)."""
    return tuple(k for k in KINDS if k.feature in features)
