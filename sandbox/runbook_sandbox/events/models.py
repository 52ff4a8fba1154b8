"""EventBridge rules that deliver to SNS topics, which moto's rules do not (they raise NotImplementedError).

An event a rule matches is published to each SNS topic among its targets as the event's JSON, as
EventBridge publishes it; moto's SNS then hands it to the topic's subscriptions (an SQS queue gets
SNS's notification, the event in its Message). The rule's other targets stay moto's.

Simplifications: the topic's access policy is not asked (AWS delivers only if it lets
events.amazonaws.com publish; moto evaluates no topic policy), a topic that does not exist is skipped
(AWS counts a failed invocation), and of a target's Input, InputPath and InputTransformer only the
transformer is applied, as moto applies it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp
from moto.events.models import Rule
from moto.events.utils import EventMessageType, EventTemplateParser
from moto.utilities.arns import parse_arn

# The members of an event as EventBridge delivers it, in its order (moto's own keeps one more).
EVENT_MEMBERS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")

_moto_send_to_targets = Rule.send_to_targets


def delivered_event(event: EventMessageType) -> dict[str, Any]:
    """The event as a target receives it: its time in ISO 8601 (moto keeps seconds since the epoch)."""
    delivered = {name: copy.deepcopy(event[name]) for name in EVENT_MEMBERS if name in event}  # type: ignore[literal-required]
    if isinstance(delivered.get("time"), (int, float)):
        delivered["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(delivered["time"]))
    return delivered


def publish_to_topic(target: dict[str, Any], event: EventMessageType) -> None:
    """Publish the event to the target's topic, as EventBridge does (see the module's simplifications)."""
    from moto.sns.models import sns_backends

    arn = parse_arn(target["Arn"])
    sns = sns_backends[arn.account][arn.region]
    if target["Arn"] not in sns.topics:
        return
    transformer = target.get("InputTransformer")
    message = (
        EventTemplateParser.parse(transformer.get("InputTemplate"), transformer.get("InputPathsMap", {}), event)
        if transformer
        else delivered_event(event)
    )
    sns.publish(json.dumps(message), arn=target["Arn"])


def send_to_targets(self: Rule, original_event: EventMessageType, transform_input: bool = True) -> None:
    """moto's delivery, with each SNS topic target published to here."""
    if not self.event_pattern.matches_event(original_event):
        return
    others = []
    for target in self.targets:
        if parse_arn(target["Arn"]).service == "sns":
            publish_to_topic(target, original_event)
        else:
            others.append(target)
    if others:
        rest = copy.copy(self)
        rest.targets = others
        _moto_send_to_targets(rest, original_event, transform_input)


def install() -> None:
    """Have moto's EventBridge rules publish to their SNS topic targets too."""
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
