#!/usr/bin/env bash
# Build the Lambda image, push it to ECR and deploy cloudformation.yaml, as the
# transcription microservice's deploy.sh does (deploy/aws/README.md).
#
#   deploy/aws/deploy.sh [ParameterName=value ...]   e.g. MemorySize=4096 AlarmEmail=ops@example.org
#
# Environment: STACK_NAME (video-transcriber), AWS_REGION (or AWS_DEFAULT_REGION,
# else us-east-1), ECR_REPOSITORY (video-transcriber-lambda), IMAGE_TAG (the git
# commit, else a timestamp). Needs the aws CLI (v2), docker, and credentials that
# may create the stack's resources and IAM role.
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stack="${STACK_NAME:-video-transcriber}"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
repository="${ECR_REPOSITORY:-video-transcriber-lambda}"
tag="${IMAGE_TAG:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || date +%Y%m%d%H%M%S)}"

for command in aws docker; do
  command -v "$command" >/dev/null || { echo "deploy.sh: $command is not installed" >&2; exit 2; }
done

account="$(aws sts get-caller-identity --query Account --output text)"
registry="${account}.dkr.ecr.${region}.amazonaws.com"

if ! aws ecr describe-repositories --region "$region" --repository-names "$repository" >/dev/null 2>&1; then
  echo "Creating the ECR repository ${repository}"
  aws ecr create-repository --region "$region" --repository-name "$repository" \
    --image-scanning-configuration scanOnPush=true >/dev/null
fi
aws ecr get-login-password --region "$region" |
  docker login --username AWS --password-stdin "$registry"

# Lambda takes a plain image manifest: no provenance attestation index.
export BUILDX_NO_DEFAULT_ATTESTATIONS=1
docker build --platform linux/amd64 -f "$root/deploy/docker/Dockerfile" \
  -t "video-transcriber:${tag}" "$root"
docker build --platform linux/amd64 --build-arg "TRANSCRIBER_IMAGE=video-transcriber:${tag}" \
  -t "${registry}/${repository}:${tag}" "$root/deploy/aws"
docker push "${registry}/${repository}:${tag}"
digest="$(aws ecr describe-images --region "$region" --repository-name "$repository" \
  --image-ids "imageTag=${tag}" --query 'imageDetails[0].imageDigest' --output text)"

aws cloudformation deploy \
  --region "$region" \
  --stack-name "$stack" \
  --template-file "$root/deploy/aws/cloudformation.yaml" \
  --capabilities CAPABILITY_IAM \
  --no-fail-on-empty-changeset \
  --parameter-overrides "ImageUri=${registry}/${repository}@${digest}" "$@"

aws cloudformation describe-stacks --region "$region" --stack-name "$stack" \
  --query 'Stacks[0].Outputs' --output table
