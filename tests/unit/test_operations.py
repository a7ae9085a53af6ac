"""Operations in template.yaml: logs with retention, alarms that notify, a billing alarm, a budget, a dashboard."""

import json

from lesionflow_local.stack import resolver
from lesionflow_local.template import function_properties, load, resources_of_type

TEMPLATE = load()
RESOURCES = TEMPLATE["Resources"]


def test_every_function_logs_to_its_own_group_with_the_retention_parameter():
    for name in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        group = function_properties(TEMPLATE, name)["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_state_machine_logs_to_its_group_without_execution_data():
    logging = RESOURCES["PipelineStateMachine"]["Properties"]["LoggingConfiguration"]
    assert logging["IncludeExecutionData"] is False  # execution data holds object keys and may hold a model input
    assert logging["Level"] == {"Ref": "StateMachineLogLevel"}
    group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_alarm_notifies_the_alarm_topic():
    alarms = resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 15
    for name, alarm in alarms.items():
        assert {"Ref": "AlarmTopic"} in alarm["Properties"]["AlarmActions"], name
        assert alarm["Properties"]["AlarmDescription"], name


def test_alarms_cover_the_dlq_the_backlog_executions_each_function_and_the_endpoint():
    watched = {(a["Properties"].get("Namespace"), a["Properties"].get("MetricName"),
                json.dumps(a["Properties"].get("Dimensions"), sort_keys=True))
               for a in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm").values()}
    names = {(namespace, metric) for namespace, metric, _ in watched}
    assert {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
            ("AWS/States", "ExecutionsFailed"), ("AWS/States", "ExecutionsTimedOut"),
            ("AWS/States", "ExecutionThrottled"), ("AWS/SageMaker", "Invocation5XXErrors"),
            ("AWS/SageMaker", "ModelLatency"), ("AWS/Billing", "EstimatedCharges")} <= names
    for function in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        dimension = json.dumps([{"Name": "FunctionName", "Value": {"Ref": function}}], sort_keys=True)
        assert ("AWS/Lambda", "Errors", dimension) in watched and ("AWS/Lambda", "Throttles", dimension) in watched


def test_the_failed_rate_alarm_divides_failed_executions_by_our_dispatched_uploads():
    metrics = {m["Id"]: m for m in RESOURCES["FailedRateAlarm"]["Properties"]["Metrics"]}
    assert metrics["dispatched"]["MetricStat"]["Metric"]["MetricName"] == "UploadsDispatched"
    assert metrics["failed"]["MetricStat"]["Metric"]["MetricName"] == "ExecutionsFailed"
    assert "failed" in metrics["rate"]["Expression"] and "dispatched" in metrics["rate"]["Expression"]


def test_the_billing_alarm_watches_estimated_charges_only_where_the_metric_exists():
    alarm = RESOURCES["BillingAlarm"]
    assert alarm["Condition"] == "InUsEast1"
    assert TEMPLATE["Conditions"]["InUsEast1"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert alarm["Properties"]["Dimensions"] == [{"Name": "Currency", "Value": "USD"}]
    assert alarm["Properties"]["Threshold"] == {"Ref": "BillingAlarmUsd"}


def test_the_monthly_budget_notifies_on_actual_and_forecast_spend():
    budget = RESOURCES["MonthlyBudget"]["Properties"]
    assert (budget["Budget"]["BudgetType"], budget["Budget"]["TimeUnit"]) == ("COST", "MONTHLY")
    assert budget["Budget"]["BudgetLimit"] == {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}
    kinds = {n["Notification"]["NotificationType"]: n for n in budget["NotificationsWithSubscribers"]}
    assert set(kinds) == {"ACTUAL", "FORECASTED"}
    for notification in kinds.values():
        assert notification["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": "AlarmTopic"}}]
    # budgets.amazonaws.com may publish to the topic (for which budgets: tests/unit/test_policies.py)
    statements = RESOURCES["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(statement["Principal"] == {"Service": "budgets.amazonaws.com"} for statement in statements)
    # and its name is unique in the account, where budget names live, whichever region the stack is in
    assert budget["Budget"]["BudgetName"] == {"Fn::Sub": "${AWS::StackName}-${AWS::Region}-monthly"}


def test_the_failed_rate_is_plain_metric_math_and_failures_without_dispatches_still_alarm():
    # IF(condition, a, b) and FILL are documented metric math for alarms (MAX([series, 1]), which mixed a number into
    # an array of series, is gone). A period with failures but no dispatch data reads 100%, not 0%: an execution that
    # started in the previous period, or a dispatcher whose metric went missing, must not hide failures.
    [rate] = [m for m in RESOURCES["FailedRateAlarm"]["Properties"]["Metrics"] if m.get("ReturnData")]
    assert rate["Expression"] == (
        "IF(FILL(dispatched, 0) > 0, 100 * FILL(failed, 0) / FILL(dispatched, 0), IF(FILL(failed, 0) > 0, 100, 0))")


def test_the_alarm_email_is_subscribed_only_when_given():
    assert RESOURCES["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert RESOURCES["AlarmEmailSubscription"]["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_the_dashboard_is_valid_json_with_the_promised_widgets():
    # When the dashboard body is resolved as CloudFormation would
    body = json.loads(resolver(TEMPLATE, {})(RESOURCES["Dashboard"]["Properties"]["DashboardBody"]))

    # Then it shows throughput, latency by stage, rejections and failures, queues, endpoint health and labels
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    assert titles == ["Throughput", "Latency by stage (p90, ms)", "Rejections and failures", "Queues: depth and age",
                      "Endpoint health", "Predictions per label"]
