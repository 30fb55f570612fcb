# Sourced by build-go.sh from this directory: CoreDNS, the local cluster's DNS (kube-system/kube-dns).
PROGRAMS=(coredns=./cmd/coredns)
LDFLAGS="-s -w"
