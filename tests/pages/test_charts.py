"""The pure functions behind the page's inline SVG charts and checkpoint lineage."""
import math

from trainer.charts import line_chart, polyline_points, rate_chart, run_charts
from trainer.dashboard import checkpoint_lineage, format_seconds


def test_points_map_the_range_onto_the_box_with_y_growing_upward():
    points = polyline_points([(0, 0), (5, 0.5), (10, 1)], x_range=(0, 10), y_range=(0, 1), width=100, height=50, pad=0)
    assert points == "0.0,50.0 50.0,25.0 100.0,0.0"


def test_padding_keeps_lines_off_the_frame():
    points = polyline_points([(0, 0), (1, 1)], x_range=(0, 1), y_range=(0, 1), width=100, height=50, pad=5)
    assert points == "5.0,45.0 95.0,5.0"


def test_the_gutter_leaves_room_for_axis_labels_on_the_left():
    points = polyline_points([(0, 0), (1, 1)], x_range=(0, 1), y_range=(0, 1), width=100, height=50, pad=5, gutter=20)
    assert points == "25.0,45.0 95.0,5.0"


def test_values_outside_a_fixed_range_are_clamped_to_the_edge():
    points = polyline_points([(0, -3), (1, 7)], x_range=(0, 1), y_range=(0, 1), width=10, height=10, pad=0)
    assert points == "0.0,10.0 10.0,0.0"


def test_missing_and_non_finite_values_are_left_out():
    chart = line_chart("Loss", {"loss": [(1, 0.7), (2, None), (3, math.nan), (4, math.inf), (5, 0.5)]})
    assert len(chart.series[0].points.split()) == 2
    assert chart.series[0].last == 0.5
    assert (chart.y_min, chart.y_max, chart.x_min, chart.x_max) == (0.5, 0.7, 1.0, 5.0)


def test_a_single_point_and_a_flat_line_still_draw():
    single = line_chart("KL", {"kl": [(3, 0.0)]}, gutter=0)
    assert single.series[0].points == f"{single.width / 2:.1f},{single.height / 2:.1f}"
    flat = line_chart("KL", {"kl": [(1, 0.0), (2, 0.0)]})
    ys = {point.split(",")[1] for point in flat.series[0].points.split()}
    assert ys == {f"{flat.height / 2:.1f}"}


def test_long_series_are_thinned_but_keep_their_ends():
    chart = line_chart("Loss", {"loss": [(step, 1 / step) for step in range(1, 10_001)]}, max_points=100)
    points = chart.series[0].points.split()
    assert 100 <= len(points) <= 101
    assert chart.series[0].last == 1 / 10_000
    assert (chart.x_min, chart.x_max) == (1.0, 10_000.0)
    assert points[-1].startswith(f"{chart.width - 6:.1f},")


def test_an_empty_chart_has_no_points():
    chart = line_chart("Loss", {"loss": []})
    assert chart.is_empty and chart.series[0].last is None


def test_run_charts_plot_the_engines_metric_names_on_a_shared_scale():
    metrics = [{"step": 1, "loss": 0.69, "kl": 0.0, "rewards/chosen": 0.1, "rewards/rejected": -0.2,
                "rewards/margins": 0.3},
               {"step": 2, "loss": 0.5, "kl": 0.1, "rewards/chosen": 0.4, "rewards/rejected": -0.5,
                "rewards/margins": 0.9}]
    charts = run_charts(metrics)
    assert set(charts) == {"loss", "kl", "rewards"}
    rewards = charts["rewards"]
    assert [s.name for s in rewards.series] == ["rewards/chosen", "rewards/rejected", "rewards/margins"]
    assert (rewards.y_min, rewards.y_max) == (-0.5, 0.9)
    assert rewards.series[2].last == 0.9


def test_the_rate_chart_always_spans_zero_to_one():
    chart = rate_chart([(1, 0.4), (2, 0.45), (3, None)])
    assert (chart.y_min, chart.y_max) == (0.0, 1.0)
    assert len(chart.series[0].points.split()) == 2


def test_lineage_lists_each_parent_before_its_children(project, make_checkpoint):
    root = make_checkpoint()
    child = make_checkpoint(parent=root)
    grandchild = make_checkpoint(parent=child)
    sibling = make_checkpoint(parent=root)
    project.active_checkpoint = child
    project.save()
    nodes = checkpoint_lineage(project)
    assert [(n.checkpoint.pk, n.depth, n.active) for n in nodes] == [
        (root.pk, 0, False), (child.pk, 1, True), (grandchild.pk, 2, False), (sibling.pk, 1, False)]


def test_eta_reads_like_a_person_would_say_it():
    assert [format_seconds(s) for s in (None, 4.4, 65, 3725)] == ["", "4 s", "1 min 05 s", "1 h 02 min"]
