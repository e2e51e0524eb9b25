// Package kubetest runs a real Kubernetes API server for tests of any package:
// kube-apiserver (built from k8s.io/kubernetes by hack/kube-apiserver.sh)
// backed by Debian's etcd 3.4, both bound to 127.0.0.1 on free ports.
//
// The server uses TLS with certificates the harness generates, authenticates
// client certificates only (--anonymous-auth=false, so a client without its
// certificate gets 401) and authorises everything. Server.Kubeconfig is shaped
// like k3s's (cluster, user and context "default"). There is no kubelet:
// CreateNode and SetNodeReady write Node status through the status
// subresource.
//
// Start-up takes seconds, so a package shares one server:
//
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }
//	func TestX(t *testing.T) { srv := kubetest.Shared(t); ... }
//
// Main stops the shared server (process groups killed, temporary directories
// removed) when the package's tests end; children also get SIGKILL if the test
// binary dies. New gives a test its own server, for tests that kill it.
// StartInDir runs one with its files in a caller's directory and the API
// server on a given loopback port, for the stand-in k3s.
//
// K3sStandin returns the stand-in k3s (package k3sstandin, built into
// .cache/k3s-standin/k3s by hack/k3s-standin.sh, rebuilt when its sources
// change): a test double of k3s's process contract for tests that run rdd
// against "k3s server".
//
// Binaries: $RDD_KUBE_APISERVER, else <repo>/.cache/kube-apiserver/<Version>/
// kube-apiserver, built by hack/kube-apiserver.sh when missing (a cold build
// takes about 10 minutes); $RDD_ETCD, else etcd on PATH (apt-get install
// etcd-server). A missing component fails the test with what to install.
package kubetest
