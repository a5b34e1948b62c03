"""Pictures of what a network computes: autograd graphs rendered through Graphviz, and the
gradient flow through time of recurrent models."""

from .chain import draw_flow_chain, draw_unrolled
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
from .lecture import draw_cell_step
from .tracking import CellCall, CellTracker, track_cells

__all__ = [
    "CellCall",
    "CellTracker",
    "FlowRecorder",
    "Graph",
    "GradientFlow",
    "RenderResult",
    "draw_cell_step",
    "draw_flow_chain",
    "draw_graph",
    "draw_unrolled",
    "gradient_flow",
    "jacobian_norms",
    "jacobian_product_spectrum",
    "render_dot",
    "step_jacobians",
    "track_cells",
]
