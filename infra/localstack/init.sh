#!/usr/bin/env bash
# LocalStack init hook: creates what the deployed stack expects to find, idempotently:
#   - the JWT signing key, an SSM SecureString (template parameter JwtParameterName);
#   - the SES identity of the mail sender (template parameter MailSender).
# docker-compose.yml mounts it at /etc/localstack/init/ready.d/, where LocalStack runs it once it is
# ready, with its own `awslocal`. From the host, with the AWS CLI:
#   AWS="aws --endpoint-url http://localhost:4566" infra/localstack/init.sh
#   infra/localstack/init.sh --dry-run      # prints the commands, runs nothing
set -euo pipefail

JWT_PARAMETER=${GOODSDROP_JWT_PARAMETER:-/goodsdrop/jwt-signing-key}
MAIL_SENDER=${GOODSDROP_MAIL_SENDER:-no-reply@goodsdrop.local}
read -r -a AWS_CLI <<<"${AWS:-awslocal}"

DRY_RUN=0
case "${1:-}" in
    --dry-run) DRY_RUN=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--dry-run]" >&2
        exit 2
        ;;
esac

# Run a command, or print it (shell-quoted) in a dry run.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '%q ' "$@"
        echo
    else
        "$@"
    fi
}

if [ "$DRY_RUN" -eq 1 ]; then
    key='<48 random bytes, base64>'
    echo "# only when the parameter is missing:"
else
    key=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
fi
if [ "$DRY_RUN" -eq 1 ] || ! "${AWS_CLI[@]}" ssm get-parameter --name "$JWT_PARAMETER" >/dev/null 2>&1; then
    run "${AWS_CLI[@]}" ssm put-parameter --name "$JWT_PARAMETER" --type SecureString --value "$key"
fi
run "${AWS_CLI[@]}" ses verify-email-identity --email-address "$MAIL_SENDER"
if [ "$DRY_RUN" -eq 0 ]; then
    echo "goodsdrop init: SSM parameter $JWT_PARAMETER and SES identity $MAIL_SENDER are in place"
fi
