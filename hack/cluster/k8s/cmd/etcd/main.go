// Package main is etcd's own server entry point, so the local cluster's
// etcd comes from the Go module proxy at the version Kubernetes pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
