package chart

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestOperatorPodAdmitted: the Flink Kubernetes Operator's Deployment (its
// chart's, release 1.15.0) with the values this chart prints for it, in a
// namespace enforcing restricted Pod Security on the real API server: the
// Deployment's pod, made by kube-controller-manager, is admitted and stored
// with the agent, native sidecar and ordinary container alike. Negative
// controls: the agent without runAsNonRoot is refused for the agent alone;
// the pod with the operator chart's default security values is refused for
// the operator's containers, never the agent.
func TestOperatorPodAdmitted(t *testing.T) {
	k := cluster(t)
	ctx := ctxFor(t, 5*time.Minute)
	ns := newNamespace(t, k, "flink-operator", nil)
	if _, err := k.Client().CoreV1().ServiceAccounts(ns).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "flink-operator"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, native := range []bool{true, false} {
		t.Run(fmt.Sprintf("native=%t", native), func(t *testing.T) {
			v := renderOperatorValues(t, "--set", fmt.Sprintf("sidecar.native=%t", native))
			d := operatorDeployment(t, v, true)
			d.Name = fmt.Sprintf("flink-kubernetes-operator-%t", native)
			sel := fmt.Sprintf("app.kubernetes.io/name=flink-kubernetes-operator,flink-agent-test=%t", native)
			d.Spec.Selector.MatchLabels["flink-agent-test"] = fmt.Sprint(native)
			d.Spec.Template.Labels["flink-agent-test"] = fmt.Sprint(native)
			if _, err := k.Client().AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
				t.Fatalf("Deployment refused: %v", err)
			}
			pods := waitPods(t, k, ns, sel, 1)
			stored := pods[0].Spec
			// Everything rendered survives admission and storage, field for
			// field (restartPolicy: Always of the native sidecar included).
			if err := subset("spec", generic(t, d.Spec.Template.Spec), generic(t, stored)); err != nil {
				t.Error(err)
			}
			agent := stored.Containers
			if native {
				agent = stored.InitContainers
			}
			if !slices.ContainsFunc(agent, func(c corev1.Container) bool { return c.Name == "flink-agent" }) {
				t.Errorf("the stored pod has no flink-agent among its %s (init %d, containers %d)",
					map[bool]string{true: "init containers", false: "containers"}[native], len(stored.InitContainers), len(stored.Containers))
			}

			// Negative control: only the agent lacks runAsNonRoot (the pod
			// level moves to the operator's containers, which keep it).
			noRoot := operatorDeployment(t, v, true)
			agentBad := &corev1.Pod{ObjectMeta: *noRoot.Spec.Template.ObjectMeta.DeepCopy(), Spec: noRoot.Spec.Template.Spec}
			agentBad.Name = fmt.Sprintf("agent-without-runasnonroot-%t", native)
			agentBad.Spec.SecurityContext.RunAsNonRoot = nil
			for _, cs := range [][]corev1.Container{agentBad.Spec.InitContainers, agentBad.Spec.Containers} {
				for i := range cs {
					yes := true
					if cs[i].Name == "flink-agent" {
						cs[i].SecurityContext.RunAsNonRoot = nil
					} else if cs[i].SecurityContext != nil {
						cs[i].SecurityContext.RunAsNonRoot = &yes
					}
				}
			}
			if _, err := createPod(ctx, k, ns, agentBad); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `"flink-agent"`) ||
				!strings.Contains(err.Error(), "runAsNonRoot") || strings.Contains(err.Error(), "flink-kubernetes-operator") {
				t.Errorf("the agent without runAsNonRoot: want a Pod Security refusal naming only flink-agent, got %v", err)
			}

			// Negative control: the operator chart's default security values.
			bad := operatorDeployment(t, v, false)
			pod := &corev1.Pod{ObjectMeta: *bad.Spec.Template.ObjectMeta.DeepCopy(), Spec: bad.Spec.Template.Spec}
			pod.Name = fmt.Sprintf("operator-defaults-%t", native)
			_, err := createPod(ctx, k, ns, pod)
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "flink-kubernetes-operator") || strings.Contains(err.Error(), `"flink-agent"`) {
				t.Errorf("the operator's defaults: want a Pod Security refusal naming the operator's containers only, got %v", err)
			} else {
				t.Logf("negative control refused as expected: %v", err)
			}
		})
	}
}
