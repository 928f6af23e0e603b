"""Kubernetes manifests (kustomize): see deploy/README.md, "Kubernetes"."""
