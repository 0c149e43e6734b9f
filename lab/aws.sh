# shellcheck shell=bash
# aws.sh - the lab's AWS load balancer, sourced by lab.sh (uses its LAB, HERE, HOSTS, log, die,
# bg, wait_for, alive).
#
# The real `aws` CLI (PyPI awscli, v1) against the moto server (PyPI moto[server]): a local
# emulator of the ELBv2 and EC2 APIs on 127.0.0.1:5000 — not AWS, nothing leaves this machine.
# Both live in a venv under the lab dir, pinned by lab/aws-requirements.txt. `start` creates a
# VPC, two subnets, an application load balancer `cctelegram-alb` with an HTTP:80 listener
# forwarding to the target group `cctelegram-tg` (HTTP 8080, health check /health), and three
# EC2 instances tagged Name=mcp-01..03 (moto wants real instances behind instance targets),
# registered on port 8080. moto keeps all this in memory: every start makes new ids, and
# write_config puts them into runbook-mcp.toml ([aws]).

AWS_VENV=$LAB/aws-venv
AWS_PORT=5000
AWS_ENDPOINT=http://127.0.0.1:$AWS_PORT
AWS_REGION=us-east-1
AWS_TG_NAME=cctelegram-tg
AWS_TARGET_PORT=8080
MOTO_AMI=ami-12c6146b # one of the AMIs moto ships with (its tests' EXAMPLE_AMI_ID)
# FAKE credentials, for the local emulator only (moto accepts any key; the CLI refuses to sign
# a request without one). Never real keys. The server gets the same through [secrets].
AWS_FAKE_KEY_ID=AKIALABFAKEKEY000000
AWS_FAKE_SECRET=lab-fake-secret-key-for-moto-only

# Idempotent and quick when present: the venv is rebuilt only when the pins changed.
install_aws() {
    local want=$HERE/aws-requirements.txt out t0
    if cmp -s "$want" "$AWS_VENV/requirements.txt" && [ -x "$AWS_VENV/bin/aws" ] &&
        [ -x "$AWS_VENV/bin/moto_server" ]; then
        return 0
    fi
    t0=$(ms)
    log "installing the aws CLI and the moto server (PyPI, pinned) into $AWS_VENV"
    mkdir -p "$LAB"
    rm -rf "$AWS_VENV"
    python3 -m venv "$AWS_VENV"
    out=$("$AWS_VENV/bin/pip" install -q --disable-pip-version-check --no-input -r "$want" 2>&1) ||
        { echo "$out" >&2; rm -rf "$AWS_VENV"; die "pip install -r $want failed"; }
    cp "$want" "$AWS_VENV/requirements.txt"
    log "installed $("$AWS_VENV/bin/aws" --version 2>&1) and moto $("$AWS_VENV/bin/python" -c \
        'import moto; print(moto.__version__)') in $(($(ms) - t0)) ms"
}

aws_installed() { [ -x "$AWS_VENV/bin/aws" ] && [ -x "$AWS_VENV/bin/moto_server" ]; }

# aws_lab ARGS... : the real CLI against the emulator, with the fake keys in its environment
# only, and text output (ids for the shell)
aws_lab() {
    env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=$AWS_FAKE_KEY_ID \
        AWS_SECRET_ACCESS_KEY=$AWS_FAKE_SECRET AWS_PAGER= \
        "$AWS_VENV/bin/aws" --endpoint-url "$AWS_ENDPOINT" --region "$AWS_REGION" --output text "$@"
}

moto_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$AWS_ENDPOINT/moto-api/data.json")" = 200 ]; }

# aws_targets_ok: the target group answers with all three targets registered
aws_targets_ok() {
    local arn
    arn=$(sed -n 's/^tg //p' "$LAB/aws/ids" 2>/dev/null) && [ -n "$arn" ] &&
        [ "$(aws_lab elbv2 describe-target-health --target-group-arn "$arn" \
            --query 'length(TargetHealthDescriptions)' 2>/dev/null)" = "${#HOSTS[@]}" ]
}

# aws_to NAME ARGS... : aws_lab ARGS with its output in $LAB/aws/NAME, to run steps side by side
aws_to() { aws_lab "${@:2}" >"$LAB/aws/$1"; }
# wait_all PID... : every one must succeed
wait_all() { local p; for p in "$@"; do wait "$p" || die "an aws CLI call failed (above)"; done; }

# start_aws: moto, then the load balancer, target group and instances; ids to $LAB/aws/ids.
# Runs in the background of cmd_start, so it only writes files. Each CLI call costs 0.4-1.7 s
# (Python start-up, moto loading a backend on first use), so independent calls run side by
# side: four rounds instead of eight calls in a row.
start_aws() {
    local vpc sub1 sub2 tg lb h t0 pids=() targets=()
    t0=$(ms)
    mkdir -p "$LAB/aws"
    rm -f "$LAB"/aws/*
    bg moto "$AWS_VENV/bin/moto_server" -H 127.0.0.1 -p "$AWS_PORT"
    wait_for "the moto server on 127.0.0.1:$AWS_PORT" 20 moto_ok
    vpc=$(aws_lab ec2 create-vpc --cidr-block 10.201.0.0/16 --query Vpc.VpcId)
    aws_to sub1 ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.201.1.0/24 \
        --availability-zone "${AWS_REGION}a" --query Subnet.SubnetId &
    pids=($!)
    aws_to sub2 ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.201.2.0/24 \
        --availability-zone "${AWS_REGION}b" --query Subnet.SubnetId &
    pids+=($!)
    aws_to tg elbv2 create-target-group --name "$AWS_TG_NAME" --protocol HTTP \
        --port "$AWS_TARGET_PORT" --vpc-id "$vpc" --target-type instance \
        --health-check-protocol HTTP --health-check-path /health \
        --query 'TargetGroups[0].TargetGroupArn' &
    pids+=($!)
    wait_all "${pids[@]}"
    sub1=$(cat "$LAB/aws/sub1") sub2=$(cat "$LAB/aws/sub2") tg=$(cat "$LAB/aws/tg")
    aws_to lb elbv2 create-load-balancer --name cctelegram-alb --subnets "$sub1" "$sub2" \
        --query 'LoadBalancers[0].LoadBalancerArn' &
    pids=($!)
    for h in "${HOSTS[@]}"; do
        aws_to "instance-$h" ec2 run-instances --image-id "$MOTO_AMI" --instance-type t3.micro \
            --subnet-id "$sub1" --tag-specifications "ResourceType=instance,Tags=[{Key=Name,Value=$h}]" \
            --query 'Instances[0].InstanceId' &
        pids+=($!)
    done
    wait_all "${pids[@]}"
    lb=$(cat "$LAB/aws/lb")
    for h in "${HOSTS[@]}"; do targets+=("Id=$(cat "$LAB/aws/instance-$h"),Port=$AWS_TARGET_PORT"); done
    aws_lab elbv2 create-listener --load-balancer-arn "$lb" --protocol HTTP --port 80 \
        --default-actions "Type=forward,TargetGroupArn=$tg" >/dev/null &
    pids=($!)
    aws_lab elbv2 register-targets --target-group-arn "$tg" --targets "${targets[@]}" &
    pids+=($!)
    wait_all "${pids[@]}"
    {
        echo "tg $tg"
        for h in "${HOSTS[@]}"; do echo "$h $(cat "$LAB/aws/instance-$h")"; done
    } >"$LAB/aws/ids.new"
    mv "$LAB/aws/ids.new" "$LAB/aws/ids"
    log "moto up, $AWS_TG_NAME with ${#HOSTS[@]} targets in $(($(ms) - t0)) ms"
}

# aws_config FILE: fill the [aws] placeholders of a rendered runbook-mcp.toml
aws_config() {
    local ids=$LAB/aws/ids h args=()
    [ -s "$ids" ] || die "no $ids: the AWS setup did not finish (see $LAB/logs/aws-setup.log)"
    args=(-e "s|@AWS_TG_ARN@|$(sed -n 's/^tg //p' "$ids")|g")
    for h in "${HOSTS[@]}"; do
        args+=(-e "s|@AWS_INSTANCE_$h@|$(sed -n "s/^$h //p" "$ids")|g")
    done
    sed -i "${args[@]}" "$1"
    ! grep -q '@AWS_' "$1" || die "unfilled @AWS_...@ placeholders in $1"
    (umask 077 && printf '%s' "$AWS_FAKE_KEY_ID" >"$LAB/secrets/aws_access_key_id" &&
        printf '%s' "$AWS_FAKE_SECRET" >"$LAB/secrets/aws_secret_access_key")
}
