// Package deploy holds the Kubernetes manifests of the dagrun worker
// (worker.yaml, keda.yaml, podmonitor.yaml, kustomization.yaml, the optional
// cgroup-writable-patch.yaml) and its Grafana dashboard. It has no code: its
// tests validate the manifests (validate.sh runs them).
package deploy
