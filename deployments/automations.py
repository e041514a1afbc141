"""The automation that tells people when a sync run failed or crashed: a webhook notification.

``zxsync automation create --webhook URL`` saves a ``CustomWebhookNotificationBlock`` pointing at
``URL`` and an automation that fires on every ``prefect.flow-run.Failed`` or ``Crashed`` event of
the sync flows (one org's run, or a sync-all). The webhook receives a JSON body
``{"text": "<subject>\\n<body>", "title": "zxsync"}`` naming the run, its state, its message and a
link to it in the UI, which is the shape Slack, Teams and Mattermost incoming webhooks accept.
Running the command again replaces both (same names), so it is safe in provisioning scripts.
"""

from __future__ import annotations

from uuid import UUID

#: What the automation and its block are called (the UI's Automations and Blocks pages).
AUTOMATION_NAME = "zxsync: sync run failed or crashed"
BLOCK_NAME = "zxsync-sync-failures"
#: Flows whose failures notify.
WATCHED_FLOWS = ["sync-organisation", "sync-all"]
SUBJECT = "Sync run {{ flow_run.state.name }}: {{ flow_run.name }}"
BODY = (
    "Flow run {{ flow_run.name }} ({{ flow_run.id }}) of {{ flow.name }} ended {{ flow_run.state.name }}: "
    "{{ flow_run.state.message }}\nOpen it: {{ flow_run|ui_url }} (Retry resumes after the last completed batch)"
)


def create_failure_automation(
    webhook_url: str, *, name: str = AUTOMATION_NAME, block_name: str = BLOCK_NAME
) -> UUID:
    """Create (or replace) the failure notification; returns the automation's id. Needs PREFECT_API_URL."""
    from prefect.automations import Automation, EventTrigger, Posture
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification

    block = CustomWebhookNotificationBlock(
        name="zxsync",
        url=webhook_url,
        method="POST",
        json_data={"text": "{{subject}}\n{{body}}", "title": "{{name}}"},
    )
    block_id = block.save(block_name, overwrite=True)
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(name):
            client.delete_automation(old.id)
    automation = Automation(
        name=name,
        description="Notifies the webhook when a sync run (one org, or sync-all) fails or crashes.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": WATCHED_FLOWS},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    ).create()
    return automation.id
