#!/usr/bin/env bash
# Deploys infra/template.yaml into LocalStack with the SAM CLI of .venv-sam, the way it deploys to
# AWS: `sam build`, then `sam deploy`, with every AWS endpoint pointed at LocalStack through
# botocore's own AWS_ENDPOINT_URL (what `samlocal` did by patching boto3).
#
# Needs Docker: `docker compose up -d --wait` (redis, mysql, kafka, localstack; docker-compose.yml
# mounts infra/localstack/init.sh as LocalStack's init hook). The functions run in LocalStack's
# Lambda containers on the compose network, so the data stores are given by their service names.
# LocalStack Community runs the functions, API Gateway, SSM and SES; the Kafka event-source
# mappings, ECS and ELBv2 need LocalStack Pro (LOCALSTACK_AUTH_TOKEN). Without an image
# (GOODSDROP_LIVE_STOCK_IMAGE) the SSE service is not created: run it with `make up` instead.
#
#   infra/localstack/deploy.sh              # build, prepare the data stores, deploy, print outputs
#   infra/localstack/deploy.sh --dry-run    # print those commands, run nothing
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD

ENDPOINT=${LOCALSTACK_ENDPOINT:-http://localhost:4566}
S3_ENDPOINT=${LOCALSTACK_S3_ENDPOINT:-http://s3.localhost.localstack.cloud:4566}
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-ap-northeast-2}}
STACK=${GOODSDROP_STACK_NAME:-goodsdrop}
BUILD_DIR=$ROOT/.aws-sam/build
SAM=$ROOT/.venv-sam/bin/sam
SAM_PYTHON=$ROOT/.venv-sam/bin/python
MAIL_SENDER=${GOODSDROP_MAIL_SENDER:-no-reply@goodsdrop.local}
LIVE_STOCK_IMAGE=${GOODSDROP_LIVE_STOCK_IMAGE:-}
# The compose services as the Lambda containers see them (same credentials as docker-compose.yml).
MYSQL_USER=${GOODSDROP_MYSQL_USER:-goodsdrop}
MYSQL_PASSWORD=${GOODSDROP_MYSQL_PASSWORD:-goodsdrop}
MYSQL_DATABASE=${GOODSDROP_MYSQL_DATABASE:-goodsdrop}

DRY_RUN=0
case "${1:-}" in
    --dry-run) DRY_RUN=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--dry-run]" >&2
        exit 2
        ;;
esac

# Run a command, or print it (shell-quoted, copy-pasteable) in a dry run.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '%q ' "$@"
        echo
    else
        "$@"
    fi
}

aws_env=(env "AWS_ENDPOINT_URL=$ENDPOINT" "AWS_ENDPOINT_URL_S3=$S3_ENDPOINT" "AWS_REGION=$REGION"
    "AWS_DEFAULT_REGION=$REGION" "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}"
    "AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}" SAM_CLI_TELEMETRY=0)

# 1. LocalStack is up.
if [ "$DRY_RUN" -eq 0 ] && ! curl -fsS --max-time 5 "$ENDPOINT/_localstack/health" >/dev/null; then
    echo "deploy: LocalStack does not answer at $ENDPOINT; start it: docker compose up -d --wait" >&2
    exit 1
fi

# 2. Kafka topics, the JWT key and SES identity (as init.sh), the schema and demo data: the local
#    bootstrap, against the compose servers on their host ports (settings.py defaults, no offset).
run env GOODSDROP_AWS_TARGET=localstack GOODSDROP_PORT_OFFSET=0 "GOODSDROP_MAIL_SENDER=$MAIL_SENDER" \
    "PYTHONPATH=$ROOT/layers/common:$ROOT/local:$ROOT" "$ROOT/.venv/bin/python" -m goodsdrop_local.bootstrap

# 3. sam build (no container).
run "$ROOT/scripts/sam_build.sh" "$BUILD_DIR"

# 4. The network parameters: LocalStack's default VPC, two of its subnets, its default group.
if [ "$DRY_RUN" -eq 1 ]; then
    echo "# look up LocalStack's default VPC, two subnets and the default security group (boto3)"
    network="vpc-localstack subnet-a,subnet-b sg-default"
else
    network=$("${aws_env[@]}" "$SAM_PYTHON" - <<'PY'
import boto3

ec2 = boto3.client("ec2")
vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                              {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
print(vpc, ",".join(subnets[:2]), group["GroupId"])
PY
)
fi
read -r vpc_id subnet_ids security_group <<<"$network"

# 5. sam deploy.
overrides=(
    Stage=local
    RedisUrl=redis://redis:6379/0
    MysqlHost=mysql
    MysqlPort=3306
    "MysqlUser=$MYSQL_USER"
    "MysqlPassword=$MYSQL_PASSWORD"
    "MysqlDatabase=$MYSQL_DATABASE"
    KafkaBootstrapServers=kafka:19092
    "MailSender=$MAIL_SENDER"
    AwsEndpointUrl=http://localstack:4566
    "VpcId=$vpc_id"
    "PrivateSubnetIds=$subnet_ids"
    "PublicSubnetIds=$subnet_ids"
    "DataAccessSecurityGroupId=$security_group"
)
if [ -n "$LIVE_STOCK_IMAGE" ]; then
    overrides+=("LiveStockImageUri=$LIVE_STOCK_IMAGE")
fi
run "${aws_env[@]}" "$SAM" deploy --template-file "$BUILD_DIR/template.yaml" --stack-name "$STACK" \
    --resolve-s3 --capabilities CAPABILITY_IAM --no-confirm-changeset --no-fail-on-empty-changeset \
    --region "$REGION" --parameter-overrides "${overrides[@]}"

# 6. ApiUrl (and StreamUrl when the SSE service was deployed).
run "${aws_env[@]}" "$SAM" list stack-outputs --stack-name "$STACK" --region "$REGION" --output table
