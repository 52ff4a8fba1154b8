"""An SNS topic of backup alerts with an SQS queue subscribed, fed by an EventBridge rule: what a team
sets up to hear of failed copies, and how a test reads what reached the queue."""

from __future__ import annotations

import json
from typing import Any

from runbook_sandbox.accounts import SOURCE_REGION

FAILED_COPIES = {"source": ["aws.backup"], "detail-type": ["Copy Job State Change"], "detail": {"state": ["FAILED"]}}


def topic_policy(topic_arn: str) -> str:
    """The statement AWS needs for EventBridge to publish to the topic (the sandbox does not ask it)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowEventBridge",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                }
            ],
        }
    )


def alert_queue(aws: Any, pattern: dict[str, Any] = FAILED_COPIES, region: str = SOURCE_REGION) -> str:
    """A rule on the source account's default bus sending matching events to a topic, an SQS queue
    subscribed to the topic; returns the queue's URL."""
    sns, sqs, events = aws.source("sns", region), aws.source("sqs", region), aws.source("events", region)
    topic_arn = sns.create_topic(Name="backup-alerts")["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=topic_policy(topic_arn))
    queue_url = sqs.create_queue(QueueName="backup-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    events.put_rule(Name="backup-alerts", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="backup-alerts", Targets=[{"Id": "alerts-topic", "Arn": topic_arn}])
    return queue_url


def events_in_queue(aws: Any, queue_url: str, region: str = SOURCE_REGION) -> list[dict[str, Any]]:
    """The events the queue holds, each unwrapped from the SNS notification that carried it."""
    messages = aws.source("sqs", region).receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(json.loads(message["Body"])["Message"]) for message in messages.get("Messages", [])]
