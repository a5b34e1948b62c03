"""Pictures of what a network computes: autograd graphs rendered through Graphviz, and the
gradient flow through time of recurrent models."""

from .dot import RenderResult, render_dot
from .flow import (
    FlowRecorder,
    GradientFlow,
    gradient_flow,
    jacobian_norms,
    jacobian_product_spectrum,
    step_jacobians,
)
from .graph import Graph, draw_graph
from .tracking import CellCall, CellTracker, track_cells

__all__ = [
    "CellCall",
    "CellTracker",
    "FlowRecorder",
    "Graph",
    "GradientFlow",
    "RenderResult",
    "draw_graph",
    "gradient_flow",
    "jacobian_norms",
    "jacobian_product_spectrum",
    "render_dot",
    "step_jacobians",
    "track_cells",
]
