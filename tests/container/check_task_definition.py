"""Checks deploy/ecs/task-definition.json, client-side, with no call made:
botocore's own ECS model validates it as the input of RegisterTaskDefinition
(what `aws ecs register-task-definition --cli-input-json` sends), then what
the course's Fargate exercise needs of it is checked.

    check_task_definition.py [TASK-DEFINITION.json]
"""

import json
import re
import sys
from pathlib import Path

import botocore.session
from botocore.validate import ParamValidator

ROOT = Path(__file__).resolve().parents[2]
# Fargate's task sizes: CPU units -> the memory (MiB) each allows.
FARGATE_MEMORY = {
    "256": [512, 1024, 2048],
    "512": list(range(1024, 4097, 1024)),
    "1024": list(range(2048, 8193, 1024)),
    "2048": list(range(4096, 16385, 1024)),
    "4096": list(range(8192, 30721, 1024)),
}


def main():
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "deploy/ecs/task-definition.json")
    task = json.loads(path.read_text())
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(task, shape)
    problems = [report.generate_report()] if report.has_errors() else []

    say = problems.append
    if task.get("networkMode") != "awsvpc":
        say("networkMode must be awsvpc (Fargate)")
    if task.get("requiresCompatibilities") != ["FARGATE"]:
        say("requiresCompatibilities must be [FARGATE]")
    if int(task.get("memory", 0)) not in FARGATE_MEMORY.get(task.get("cpu"), []):
        say(f"cpu {task.get('cpu')} with memory {task.get('memory')} is not a Fargate size")
    for role in ("taskRoleArn", "executionRoleArn"):
        if not re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", task.get(role, "")):
            say(f"{role} is not an IAM role ARN")
    version = re.search(r"project\(\s*\w+\s+VERSION\s+([0-9.]+)",
                        (ROOT / "CMakeLists.txt").read_text()).group(1)
    for container in task.get("containerDefinitions", []):
        name = container.get("name")
        command = container.get("command", [])
        deadline = next((int(a.split("=", 1)[1]) for a in command
                         if a.startswith("--stop-deadline=")), 25)
        if not deadline < container.get("stopTimeout", 30) <= 120:
            say(f"{name}: stopTimeout must be above --stop-deadline ({deadline} s) and at most 120")
        if container.get("logConfiguration", {}).get("logDriver") != "awslogs":
            say(f"{name}: the log driver is not awslogs")
        if not container.get("image", "").endswith(":" + version):
            say(f"{name}: the image is not the project's version {version}")
        if container.get("user") != "10001:10001" or not container.get("readonlyRootFilesystem"):
            say(f"{name}: not the image's user 10001 with a read-only root filesystem")
        names = {e["name"] for e in container.get("environment", [])}
        if names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                    "PGPASSWORD"} or container.get("secrets"):
            say(f"{name}: a credential in the task definition: the task role gives them")
    for problem in problems:
        print(f"check_task_definition: {problem}")
    if not problems:
        print(f"check_task_definition: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              "is a valid RegisterTaskDefinition input (botocore "
              f"{botocore.__version__}) for Fargate")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
