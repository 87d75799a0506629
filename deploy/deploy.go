// Package deploy holds no code. Its tests keep the files in this folder
// true to the facade they deploy: the dashboard and the alert rules query
// metrics a running facade exports, promtool accepts the rules as a user
// runs it and they fire when they should, the Kubernetes manifests and
// their kustomize output fit what the facade serves, and the image and
// compose file are built and wired the way the README says.
//
// The tests need promtool (Debian: apt-get install prometheus) and
// kustomize (or kubectl, which has it); without them those tests skip,
// unless STRANGLER_REQUIRE_TOOLS=1, as in CI, makes that a failure.
package deploy
