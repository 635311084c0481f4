from alerts.promql import metric_names, selector


def test_skips_functions_keywords_label_lists_strings_and_durations():
    expr = """
      histogram_quantile(0.99, sum by (le, model) (rate(model_health_request_duration_seconds_bucket{job=~"a|b", le!="x"}[5m])))
      > on (model) group_left (team) max without (instance) (model_health_info_like offset 1h)
      and ignoring (window) topk(3, model_health_feature_psi @ 1700000000) unless bool 1e3
      or label_replace(vector(0), "reason", "stale", "", "") or sum(rate(x:recorded:rate5m[10m:1m]))
    """
    assert metric_names(expr) == {
        "model_health_request_duration_seconds_bucket",
        "model_health_info_like",
        "model_health_feature_psi",
        "x:recorded:rate5m",
    }


def test_aggregation_modifier_after_the_parenthesis_and_group_left_without_labels():
    expr = "sum(rate(a_total[5m])) by (model) / on (model) group_left b_ratio"
    assert metric_names(expr) == {"a_total", "b_ratio"}


def test_grafana_variables_are_not_series():
    expr = 'max by (feature) (model_health_feature_psi{model="$model", window="${window}"}) [$__rate_interval]'
    assert metric_names(expr) == {"model_health_feature_psi"}


def test_bare_names_with_inf_nan_and_numbers():
    assert metric_names("up == 0 or up > Inf or up != NaN or 0x1f > 2.5e-3") == {"up"}


def test_selector_composes_exact_and_regex_matchers():
    assert selector("m", {"job": 'a"b'}, window=None) == 'm{job="a\\"b"}'
    assert selector("m", window="1h|1d") == 'm{window=~"1h|1d"}'
