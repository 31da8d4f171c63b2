"""Creates the IAM user the signed tests use on a moto server in IAM mode.

moto lets exactly INITIAL_NO_AUTH_ACTION_COUNT actions through unsigned; this
script spends them (create user, policy document, attach, role, attach to the
role, access key) and then prints the user's key and the role's ARN as
KEY=VALUE lines. From then on moto checks every signature against this key or
against the temporary keys of the role (which the user, and the role itself,
may assume: the credentials tests chain roles with it), so a wrong SigV4
signature fails the tests.
"""

import json
import sys

import boto3

endpoint = sys.argv[1]
iam = boto3.client(
    "iam",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="bootstrap",
    aws_secret_access_key="bootstrap",
)
iam.create_user(UserName="widget-consumer-tests")
policy = iam.create_policy(
    PolicyName="widget-consumer-tests",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*", "sqs:*", "dynamodb:*", "sts:AssumeRole"],
                    "Resource": "*",
                }
            ],
        }
    ),
)
iam.attach_user_policy(UserName="widget-consumer-tests", PolicyArn=policy["Policy"]["Arn"])
role = iam.create_role(
    RoleName="widget-consumer-tests",
    AssumeRolePolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            ],
        }
    ),
)
iam.attach_role_policy(RoleName="widget-consumer-tests", PolicyArn=policy["Policy"]["Arn"])
key = iam.create_access_key(UserName="widget-consumer-tests")["AccessKey"]
print(f"AWS_ACCESS_KEY_ID={key['AccessKeyId']}")
print(f"AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}")
print(f"ROLE_ARN={role['Role']['Arn']}")
