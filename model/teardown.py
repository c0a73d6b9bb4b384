"""The destroy-time teardown scripts (POSIX sh + aws CLI v1/v2 + kubectl) of ``constructs.teardown``.

Pure strings, so tests run them (against a fake ``kubectl``/``aws`` on PATH, or the emulator)
without loading the CDKTF bindings. ``WORKLOAD_CLEANUP`` runs before the cluster goes, ``SWEEP``
after it; both read ``CLUSTER``, ``REGION``, ``VPC`` and ``ATTEMPTS`` from the environment. They
contain no ``${`` or ``%{`` (Terraform would read them as template sequences).
"""

from __future__ import annotations

ATTEMPTS = 30  # checks 10 s apart: 5 minutes, for the controllers' deletes and for AWS to release interfaces

# POSIX sh functions shared by both scripts (aws CLI v1 or v2; every filter by tag, never by name alone).
# Each prints ids/names/ARNs separated by whitespace.
FIND = r"""
aws_text() { aws --region "$REGION" --output text "$@" | tr -s '\t' '\n' | grep -v '^None$' | grep -v '^$'; }
owned_elbs() {  # classic ELBs of the EKS cloud controller
  names=$(aws_text elb describe-load-balancers --query "LoadBalancerDescriptions[?VPCId=='$VPC'].LoadBalancerName")
  [ -z "$names" ] && return 0
  printf '%s\n' $names | xargs -n 20 aws --region "$REGION" --output text elb describe-tags \
    --query "TagDescriptions[?Tags[?Key=='kubernetes.io/cluster/$CLUSTER' && Value=='owned']].LoadBalancerName" \
    --load-balancer-names | tr -s '\t' '\n' | grep -v '^$'
  return 0
}
tagged_v2() {  # of the given ELBv2 ARNs, those the AWS Load Balancer Controller (or the cloud controller) made
  [ $# -eq 0 ] && return 0
  printf '%s\n' "$@" | xargs -n 20 aws --region "$REGION" --output text elbv2 describe-tags \
    --query "TagDescriptions[?Tags[?(Key=='elbv2.k8s.aws/cluster' && Value=='$CLUSTER') || (Key=='kubernetes.io/cluster/$CLUSTER' && Value=='owned')]].ResourceArn" \
    --resource-arns | tr -s '\t' '\n' | grep -v '^$'
  return 0
}
# only in the cluster's VPC: a cluster of the same name in another VPC of the region keeps its own
owned_elbv2() { tagged_v2 $(aws_text elbv2 describe-load-balancers --query "LoadBalancers[?VpcId=='$VPC'].LoadBalancerArn"); }
owned_target_groups() { tagged_v2 $(aws_text elbv2 describe-target-groups --query "TargetGroups[?VpcId=='$VPC'].TargetGroupArn"); }
owned_groups() {  # k8s-* security groups of either controller in the VPC
  for pair in "kubernetes.io/cluster/$CLUSTER owned" "elbv2.k8s.aws/cluster $CLUSTER"; do
    set -- $pair
    aws_text ec2 describe-security-groups --filters "Name=vpc-id,Values=$VPC" "Name=tag:$1,Values=$2" \
      --query "SecurityGroups[?starts_with(GroupName, 'k8s-')].GroupId"
  done | sort -u
}
left_cluster_group() {  # EKS deletes its cluster security group with the cluster, unless an interface still used it
  aws_text ec2 describe-security-groups --filters "Name=vpc-id,Values=$VPC" "Name=tag:aws:eks:cluster-name,Values=$CLUSTER" \
    --query "SecurityGroups[?starts_with(GroupName, 'eks-cluster-sg-$CLUSTER-')].GroupId"
}
# The VPC CNI's interfaces left 'available' in the VPC. The CNI tags its interfaces
# node.k8s.amazonaws.com/instance_id=<node> always, cluster.k8s.amazonaws.com/name=<cluster> only when its
# CLUSTER_NAME is set (EKS's vpc-cni add-on takes no CLUSTER_NAME): an untagged one is this cluster's when
# the node it was made for is (instances stay listed about an hour after they terminate).
leaked_interfaces() {
  aws_text ec2 describe-network-interfaces \
    --filters "Name=vpc-id,Values=$VPC" "Name=tag:cluster.k8s.amazonaws.com/name,Values=$CLUSTER" \
    --query "NetworkInterfaces[?Status=='available'].NetworkInterfaceId"
  untagged=$(aws --region "$REGION" --output text ec2 describe-network-interfaces \
    --filters "Name=vpc-id,Values=$VPC" "Name=tag-key,Values=node.k8s.amazonaws.com/instance_id" \
    --query "NetworkInterfaces[?Status=='available' && !(TagSet[?Key=='cluster.k8s.amazonaws.com/name'])].[NetworkInterfaceId, TagSet[?Key=='node.k8s.amazonaws.com/instance_id'] | [0].Value]")
  nodes=$(printf '%s\n' "$untagged" | awk 'NF == 2 { print $2 }' | sort -u | paste -sd, -)
  [ -n "$nodes" ] || return 0
  ours=" $(aws_text ec2 describe-instances --filters "Name=instance-id,Values=$nodes" \
    "Name=tag:kubernetes.io/cluster/$CLUSTER,Values=owned" --query 'Reservations[].Instances[].InstanceId' | tr '\n' ' ') "
  printf '%s\n' "$untagged" | while read -r eni node; do
    case "$ours" in *" $node "*) echo "$eni" ;; esac
  done
}
count() { set -- $*; echo $#; }
# Each aws and kubectl call re-reads the credentials (environment, profile, SSO cache), so a session
# renewed meanwhile (aws sso login, a new session for the profile) is picked up by the next attempt;
# keys exported into Terraform's environment cannot be renewed from outside.
session_expired() {
  out=$(aws sts get-caller-identity --region "$REGION" --output text --query Arn 2>&1) && return 1
  case "$out" in *Expired*|*expired*|*InvalidClientTokenId*|*"security token included in the request is invalid"*)
    echo "teardown: the AWS session of this destroy has expired ($(printf '%s' "$out" | tail -n 1)); renew it (aws sso login, or a new session for the profile) in another terminal: the next attempt re-reads the credentials. Exported AWS_* keys cannot be renewed: see docs/destroy.md, A destroy under a short session." >&2
    return 0 ;;
  esac
  return 1
}
"""

# Destroyed before every Helm release and Kubernetes object (see the module docstring).
WORKLOAD_CLEANUP = r"""set -u
""" + FIND + r"""
say() { echo "teardown: $*"; }
skip() { say "$* LoadBalancer Services, ALB Ingresses and Gateways of $CLUSTER were not deleted; the sweep after the cluster's deletion removes what their controllers left." >&2; exit 0; }
command -v kubectl >/dev/null 2>&1 || skip "kubectl is not installed:"
kubeconfig=$(mktemp); trap 'rm -f "$kubeconfig"' EXIT
out=$(aws eks update-kubeconfig --name "$CLUSTER" --region "$REGION" --kubeconfig "$kubeconfig" 2>&1) \
  || skip "cluster $CLUSTER cannot be described ($(printf '%s' "$out" | tail -n 1)):"
k() { kubectl --kubeconfig "$kubeconfig" --request-timeout=20s "$@"; }
services=$(k get services --all-namespaces -o \
  'jsonpath={range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace}{" "}{.metadata.name}{"\n"}{end}' 2>&1) \
  || skip "kubectl cannot list the Services of $CLUSTER (API server unreachable or access refused: $(printf '%s' "$services" | tail -n 1)):"
# IngressClasses of the AWS Load Balancer Controller: name, and whether it is the cluster's default
# (an Ingress without a class, by field or annotation, is served by the default class)
alb_classes=$(k get ingressclasses -o \
  'jsonpath={range .items[?(@.spec.controller=="ingress.k8s.aws/alb")]}{.metadata.name}{" "}{.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}{"\n"}{end}' 2>/dev/null)
classes=" alb $(printf '%s\n' "$alb_classes" | while read -r class default; do [ -n "$class" ] && printf '%s ' "$class"; done) "
default_alb=no
printf '%s\n' "$alb_classes" | grep -q ' true$' && default_alb=yes
ingresses=$(k get ingresses --all-namespaces -o \
  'jsonpath={range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.spec.ingressClassName}{" "}{.metadata.annotations.kubernetes\.io/ingress\.class}{"\n"}{end}' 2>&1) \
  || skip "the Ingresses of $CLUSTER cannot be listed ($(printf '%s' "$ingresses" | tail -n 1)):"
# Gateway API (AWS Load Balancer Controller 2.13+): the GatewayClasses of its ALB and NLB controllers and
# their Gateways. Fully qualified kinds: another project's "gateways" (Istio's) must not match. No
# Gateway API CRDs installed: nothing to delete.
gateway_classes=" $(k get gatewayclasses.gateway.networking.k8s.io -o \
  'jsonpath={range .items[?(@.spec.controllerName=="gateway.k8s.aws/alb")]}{.metadata.name}{" "}{end}{range .items[?(@.spec.controllerName=="gateway.k8s.aws/nlb")]}{.metadata.name}{" "}{end}' 2>/dev/null) "
gateways=""
if [ -n "$(printf '%s' "$gateway_classes" | tr -d ' ')" ]; then
  gateways=$(k get gateways.gateway.networking.k8s.io --all-namespaces -o \
    'jsonpath={range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.spec.gatewayClassName}{"\n"}{end}' 2>&1) \
    || skip "the Gateways of $CLUSTER cannot be listed ($(printf '%s' "$gateways" | tail -n 1)):"
fi
deleted=0
while read -r ns name; do
  [ -n "$name" ] || continue
  say "deleting LoadBalancer Service $ns/$name (its controller deletes the load balancer)"
  k delete service --namespace "$ns" "$name" --wait=false --ignore-not-found && deleted=$((deleted + 1))
done <<EOF
$services
EOF
while read -r ns name first second; do
  [ -n "$name" ] || continue
  if [ -z "$first" ] && [ -z "$second" ]; then  # no class: the default IngressClass serves it
    [ "$default_alb" = yes ] || continue
    why="no class: the default IngressClass is the AWS Load Balancer Controller's"
  else
    [ -n "$first" ] || first=none; [ -n "$second" ] || second=none
    case "$classes" in *" $first "*|*" $second "*) ;; *) continue ;; esac
    why="the AWS Load Balancer Controller deletes its load balancer"
  fi
  say "deleting ALB Ingress $ns/$name ($why)"
  k delete ingress --namespace "$ns" "$name" --wait=false --ignore-not-found && deleted=$((deleted + 1))
done <<EOF
$ingresses
EOF
while read -r ns name class; do
  [ -n "$name" ] || continue
  case "$gateway_classes" in *" $class "*) ;; *) continue ;; esac
  say "deleting Gateway $ns/$name (class $class: the AWS Load Balancer Controller deletes its load balancer)"
  k delete gateways.gateway.networking.k8s.io --namespace "$ns" "$name" --wait=false --ignore-not-found \
    && deleted=$((deleted + 1))
done <<EOF
$gateways
EOF
[ "$deleted" -eq 0 ] && { say "no LoadBalancer Service, ALB Ingress or AWS Load Balancer Controller Gateway in $CLUSTER"; exit 0; }
for attempt in $(seq 1 "$ATTEMPTS"); do
  if session_expired; then sleep 10; continue; fi
  left=$(count $(owned_elbs) $(owned_elbv2) $(owned_target_groups) $(owned_groups))
  [ "$left" = "0" ] && { say "the controllers deleted every load balancer of $CLUSTER"; exit 0; }
  say "waiting for $left load balancer(s), target group(s) and security group(s) of $CLUSTER to be deleted by their controllers ($attempt/$ATTEMPTS)"
  sleep 10
done
say "load balancers of $CLUSTER remain after $ATTEMPTS checks 10 s apart; the sweep after the cluster's deletion deletes them" >&2
exit 0
"""

# Destroyed after the cluster, before the subnets, gateways and VPC (see the module docstring).
SWEEP = r"""set -u
""" + FIND + r"""
say() { echo "teardown: $*"; }
if state=$(aws eks describe-cluster --name "$CLUSTER" --region "$REGION" --query cluster.status --output text 2>&1); then
  say "cluster $CLUSTER still exists ($state): the sweep deletes its load balancers only once it is gone. Destroy the cluster first (or, if this resource is being replaced, cancel and report it)." >&2
  exit 1
fi
case "$state" in *ResourceNotFoundException*) ;; *) say "cannot tell whether cluster $CLUSTER is gone: $state" >&2; exit 1 ;; esac
for attempt in $(seq 1 "$ATTEMPTS"); do
  if session_expired; then
    [ "$attempt" = "$ATTEMPTS" ] && { say "the AWS session stayed expired for $ATTEMPTS attempts 10 s apart; renew it and run the destroy again" >&2; exit 1; }
    sleep 10; continue
  fi
  found=""  # what this pass tried to delete; nothing found: nothing to check again
  for arn in $(owned_elbv2); do found="$found $arn"; say "deleting load balancer $arn"; aws --region "$REGION" elbv2 delete-load-balancer --load-balancer-arn "$arn"; done
  for lb in $(owned_elbs); do found="$found $lb"; say "deleting classic load balancer $lb"; aws --region "$REGION" elb delete-load-balancer --load-balancer-name "$lb"; done
  for arn in $(owned_target_groups); do
    found="$found $arn"; say "deleting target group $arn"; aws --region "$REGION" elbv2 delete-target-group --target-group-arn "$arn"
  done
  for eni in $(leaked_interfaces); do
    found="$found $eni"; say "deleting leaked VPC CNI interface $eni"; aws --region "$REGION" ec2 delete-network-interface --network-interface-id "$eni"
  done
  for group in $(owned_groups); do
    found="$found $group"
    rules=$(aws --region "$REGION" --output text ec2 describe-security-group-rules \
      --query "SecurityGroupRules[?ReferencedGroupInfo.GroupId=='$group' && GroupId!='$group'].[GroupId,SecurityGroupRuleId,IsEgress]")
    printf '%s\n' "$rules" | while read -r holder rule egress; do
      [ -n "$rule" ] || continue
      direction=ingress; [ "$egress" = "True" ] && direction=egress
      say "revoking $direction rule $rule of $holder (references $group)"
      aws --region "$REGION" ec2 "revoke-security-group-$direction" --group-id "$holder" --security-group-rule-ids "$rule" >/dev/null
    done
    say "deleting security group $group"; aws --region "$REGION" ec2 delete-security-group --group-id "$group"
  done
  for group in $(left_cluster_group); do  # no rule of another group is revoked for it: those are not ours
    found="$found $group"; say "deleting cluster security group $group (EKS left it: an interface still used it)"
    aws --region "$REGION" ec2 delete-security-group --group-id "$group"
  done
  [ -z "$found" ] && break
  left="$(owned_elbv2) $(owned_elbs) $(owned_target_groups) $(owned_groups) $(leaked_interfaces) $(left_cluster_group)"
  [ "$(count $left)" = "0" ] && break
  if [ "$attempt" = "$ATTEMPTS" ]; then
    say "still left after $ATTEMPTS attempts 10 s apart:" $left >&2
    say "delete them (they are tagged for $CLUSTER), then run the destroy again" >&2
    exit 1
  fi
  say "$(count $left) left, AWS is still releasing them; retrying in 10 s ($attempt/$ATTEMPTS)"
  sleep 10
done
volumes=$(aws_text ec2 describe-volumes --filters "Name=tag:ebs.csi.aws.com/cluster,Values=true" "Name=tag:Cluster,Values=$CLUSTER" --query 'Volumes[].VolumeId')
if [ -n "$volumes" ]; then
  say "kept $(count $volumes) EBS volume(s) of $CLUSTER's PersistentVolumeClaims (their data):" $volumes
  say "delete each with: aws ec2 delete-volume --region $REGION --volume-id <id>"
else
  say "no EBS volume of $CLUSTER's PersistentVolumeClaims is left"
fi
say "nothing of $CLUSTER's load balancers, their security groups or leaked interfaces is left"
"""
