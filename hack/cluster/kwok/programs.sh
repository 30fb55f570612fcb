# Sourced by build-go.sh from this directory: KWOK, which simulates nodes and the pods bound to them
# (hack/cluster/kwok.ts adds the nodes; bench/scale.ts runs VMIs on them). Its version is compiled in.
PROGRAMS=(kwok=sigs.k8s.io/kwok/cmd/kwok)
LDFLAGS="-s -w"
