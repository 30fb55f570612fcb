#!/usr/bin/env bash
# Generates the cluster PKI with openssl (idempotent: existing files are kept).
# pki.sh API_IP: the cluster's, node01's among them. pki.sh API_IP NODE NODE_IP: only that
# node's kubelet certificates and kubeconfig (node.sh), the other files untouched.
source "$(dirname "$0")/env.sh"
NODE_IP=$1
mkdir -p "$PKI" && cd "$PKI"
umask 077

ca() { # name, CN
  [ -f "$1.crt" ] && return
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}
cert() { # name, ca, subject, usage (server|client), [SANs]
  [ -f "$1.crt" ] && return
  local ext="extendedKeyUsage=${4}Auth"
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n%s\n' "$ext" "${5:+subjectAltName=$5}" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

kubeconfig() { # file, user cert name
  local server="https://$NODE_IP:6443"
  cat > "$STATE/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kubevirt-ts
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$2.crt")
    client-key-data: $(base64 -w0 "$2.key")
contexts:
- name: kubevirt-ts
  context: {cluster: kubevirt-ts, user: $2}
current-context: kubevirt-ts
KC
}

if [ $# -gt 1 ]; then
  cert "$2-kubelet-client" ca "/O=system:nodes/CN=system:node:$2" client
  cert "$2-kubelet" ca "/CN=$2" server "DNS:$2,IP:$3,IP:127.0.0.1"
  kubeconfig "$2-kubelet" "$2-kubelet-client"
  exit 0
fi

ca ca kubevirt-ts-cluster-ca
ca front-proxy-ca kubevirt-ts-front-proxy-ca
cert apiserver ca "/CN=kube-apiserver" server \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP"
cert apiserver-kubelet-client ca "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client" client
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" client
cert admin ca "/O=system:masters/CN=kubernetes-admin" client
cert controller-manager ca "/CN=system:kube-controller-manager" client
cert scheduler ca "/CN=system:kube-scheduler" client
cert kube-proxy ca "/CN=system:kube-proxy" client
cert kubelet-client ca "/O=system:nodes/CN=system:node:$NODE_NAME" client
cert kubelet ca "/CN=$NODE_NAME" server "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1"
cert etcd ca "/CN=etcd" server "DNS:localhost,IP:127.0.0.1"
# metrics-server behind its APIService (metrics-server.ts), which names this CA.
cert metrics-server ca "/CN=metrics-server.kube-system.svc" server "DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local"
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

for c in admin controller-manager scheduler kube-proxy; do kubeconfig "$c" "$c"; done
kubeconfig kubelet kubelet-client
