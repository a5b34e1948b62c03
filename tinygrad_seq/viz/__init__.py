"""Pictures of what a network computes: autograd graphs rendered through Graphviz."""

from .dot import RenderResult, render_dot
from .graph import Graph, draw_graph

__all__ = ["Graph", "RenderResult", "draw_graph", "render_dot"]
