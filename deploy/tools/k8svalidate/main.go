// Command k8svalidate renders a kustomization (or reads a rendered manifest stream) and
// validates it offline against the Kubernetes Go types.
//
// Why: kubeconform needs JSON schemas from the internet and the build machines have none.
// Decoding every document strictly into the typed objects of k8s.io/api catches unknown
// fields, wrong types, bad quantities and unregistered kinds; a few cross-object checks
// catch what an API server would accept but a rollout would trip over (selectors that match
// nothing, ConfigMaps that are referenced but not shipped, HPAs aiming at nothing).
//
// Usage:
//
//	k8svalidate [-o rendered.yaml] KUSTOMIZATION_DIR   render with the embedded kustomize, then validate
//	k8svalidate -f manifests.yaml                      validate an already rendered stream ("-" = stdin)
//
// Exit status: 0 valid, 1 validation errors (one "ERROR ..." line each), 2 usage/render failure.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// podOwner is a workload whose pod template other objects (Services, PDBs, HPAs) point at.
type podOwner struct {
	kind, name, namespace string
	labels                map[string]string
	spec                  *corev1.PodSpec
	claims                []string // StatefulSet volumeClaimTemplates, mountable like volumes
}

type validator struct {
	errs       []string
	seen       map[string]bool
	configMaps map[string]map[string]string // ns/name -> data
	secrets    map[string]map[string]bool   // ns/name -> keys
	pods       []podOwner
	services   []*corev1.Service
	hpas       []*autoscalingv2.HorizontalPodAutoscaler
	pdbs       []*policyv1.PodDisruptionBudget
	count      int
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

func (v *validator) errorf(id, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf("ERROR %s: %s", id, fmt.Sprintf(format, args...)))
}

func nsOf(m metav1.Object) string {
	if m.GetNamespace() == "" {
		return "default"
	}
	return m.GetNamespace()
}

// decode strictly decodes one document and records it for the cross-object checks.
func (v *validator) decode(dec runtime.Decoder, doc []byte, index int) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return
	}
	v.count++
	obj, gvk, err := dec.Decode(doc, nil, nil)
	where := fmt.Sprintf("document %d", index)
	if gvk != nil {
		where = fmt.Sprintf("%s (%s)", where, gvk.String())
	}
	if err != nil && !runtime.IsStrictDecodingError(err) {
		v.errorf(where, "%v", err)
		return
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		v.errorf(where, "not a Kubernetes object")
		return
	}
	id := fmt.Sprintf("%s/%s", gvk.Kind, meta.GetName())
	if err != nil { // strict decoding: unknown or duplicate fields
		v.errorf(id, "%v", err)
	}
	key := gvk.GroupKind().String() + "/" + nsOf(meta) + "/" + meta.GetName()
	if v.seen[key] {
		v.errorf(id, "duplicate object %s", key)
	}
	v.seen[key] = true
	v.checkMeta(id, gvk.Kind, meta)

	switch o := obj.(type) {
	case *corev1.ConfigMap:
		v.configMaps[nsOf(o)+"/"+o.Name] = o.Data
	case *corev1.Secret:
		keys := map[string]bool{}
		for k := range o.Data {
			keys[k] = true
		}
		for k := range o.StringData {
			keys[k] = true
		}
		v.secrets[nsOf(o)+"/"+o.Name] = keys
	case *appsv1.Deployment:
		v.checkSelector(id, o.Spec.Selector, o.Spec.Template.Labels)
		if p := o.Spec.Template.Spec.RestartPolicy; p != "" && p != corev1.RestartPolicyAlways {
			v.errorf(id, "Deployment pods must use restartPolicy Always, not %s", p)
		}
		v.pods = append(v.pods, podOwner{"Deployment", o.Name, nsOf(o), o.Spec.Template.Labels, &o.Spec.Template.Spec, nil})
	case *appsv1.StatefulSet:
		v.checkSelector(id, o.Spec.Selector, o.Spec.Template.Labels)
		if o.Spec.ServiceName == "" {
			v.errorf(id, "StatefulSet needs spec.serviceName")
		}
		claims := []string{}
		for _, c := range o.Spec.VolumeClaimTemplates {
			claims = append(claims, c.Name)
		}
		v.pods = append(v.pods, podOwner{"StatefulSet", o.Name, nsOf(o), o.Spec.Template.Labels, &o.Spec.Template.Spec, claims})
	case *batchv1.Job:
		p := o.Spec.Template.Spec.RestartPolicy
		if p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
			v.errorf(id, "Job pods must use restartPolicy Never or OnFailure, not %q", p)
		}
		v.pods = append(v.pods, podOwner{"Job", o.Name, nsOf(o), o.Spec.Template.Labels, &o.Spec.Template.Spec, nil})
	case *corev1.Service:
		v.services = append(v.services, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		v.hpas = append(v.hpas, o)
	case *policyv1.PodDisruptionBudget:
		v.pdbs = append(v.pdbs, o)
	}
}

func (v *validator) checkMeta(id, kind string, m metav1.Object) {
	if m.GetName() == "" {
		v.errorf(id, "metadata.name is empty")
	}
	nameCheck := validation.IsDNS1123Subdomain
	if kind == "Service" || kind == "Namespace" {
		nameCheck = validation.IsDNS1123Label
	}
	for _, msg := range nameCheck(m.GetName()) {
		v.errorf(id, "metadata.name: %s", msg)
	}
	if ns := m.GetNamespace(); ns != "" {
		for _, msg := range validation.IsDNS1123Label(ns) {
			v.errorf(id, "metadata.namespace: %s", msg)
		}
	}
	for k, val := range m.GetLabels() {
		for _, msg := range validation.IsQualifiedName(k) {
			v.errorf(id, "label key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(val) {
			v.errorf(id, "label %q value: %s", k, msg)
		}
	}
}

func (v *validator) checkSelector(id string, sel *metav1.LabelSelector, tmpl map[string]string) {
	if sel == nil {
		v.errorf(id, "spec.selector is required")
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		v.errorf(id, "spec.selector: %v", err)
		return
	}
	if s.Empty() || !s.Matches(labels.Set(tmpl)) {
		v.errorf(id, "spec.selector does not match the pod template labels %v", tmpl)
	}
}

func (v *validator) checkPodSpec(o podOwner) {
	id := o.kind + "/" + o.name
	spec := o.spec
	if len(spec.Containers) == 0 {
		v.errorf(id, "pod template has no containers")
	}
	volumes := map[string]bool{}
	for _, claim := range o.claims {
		volumes[claim] = true
	}
	for _, vol := range spec.Volumes {
		if volumes[vol.Name] {
			v.errorf(id, "duplicate volume %q", vol.Name)
		}
		volumes[vol.Name] = true
		if vol.ConfigMap != nil {
			v.requireConfigMap(id, o.namespace, vol.ConfigMap.Name, "", vol.ConfigMap.Optional)
		}
	}
	names := map[string]bool{}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i := range all {
		c := &all[i]
		cid := fmt.Sprintf("%s container %q", id, c.Name)
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			v.errorf(cid, "name: %s", msg)
		}
		if names[c.Name] {
			v.errorf(cid, "duplicate container name")
		}
		names[c.Name] = true
		if c.Image == "" {
			v.errorf(cid, "image is empty")
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			for _, msg := range validation.IsValidPortNum(int(p.ContainerPort)) {
				v.errorf(cid, "containerPort: %s", msg)
			}
			if p.Name != "" {
				for _, msg := range validation.IsValidPortName(p.Name) {
					v.errorf(cid, "port name %q: %s", p.Name, msg)
				}
				ports[p.Name] = true
			}
		}
		for _, pr := range []struct {
			what  string
			probe *corev1.Probe
		}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
			v.checkProbe(cid, pr.what, pr.probe, ports)
		}
		for _, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				v.errorf(cid, "env %q: %s", e.Name, msg)
			}
			if e.ValueFrom != nil && e.Value != "" {
				v.errorf(cid, "env %q has both value and valueFrom", e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				r := e.ValueFrom.ConfigMapKeyRef
				v.requireConfigMap(cid, o.namespace, r.Name, r.Key, r.Optional)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				v.checkSecretKey(cid, o.namespace, r.Name, r.Key, r.Optional)
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				v.requireConfigMap(cid, o.namespace, ef.ConfigMapRef.Name, "", ef.ConfigMapRef.Optional)
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				v.errorf(cid, "volumeMount %q names no volume of the pod", m.Name)
			}
		}
	}
}

func (v *validator) checkProbe(cid, what string, p *corev1.Probe, ports map[string]bool) {
	if p == nil {
		return
	}
	handlers := 0
	if p.HTTPGet != nil {
		handlers++
		v.checkPortRef(cid, what, p.HTTPGet.Port, ports)
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			v.errorf(cid, "%s.httpGet.path %q must start with /", what, p.HTTPGet.Path)
		}
	}
	if p.TCPSocket != nil {
		handlers++
		v.checkPortRef(cid, what, p.TCPSocket.Port, ports)
	}
	if p.Exec != nil {
		handlers++
	}
	if p.GRPC != nil {
		handlers++
	}
	if handlers != 1 {
		v.errorf(cid, "%s must have exactly one handler, has %d", what, handlers)
	}
}

func (v *validator) checkPortRef(cid, what string, port intstr.IntOrString, ports map[string]bool) {
	if port.Type == intstr.String {
		if !ports[port.StrVal] {
			v.errorf(cid, "%s port %q names no container port", what, port.StrVal)
		}
		return
	}
	for _, msg := range validation.IsValidPortNum(port.IntValue()) {
		v.errorf(cid, "%s port: %s", what, msg)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func (v *validator) requireConfigMap(id, ns, name, key string, optional *bool) {
	if isTrue(optional) {
		return
	}
	data, ok := v.configMaps[ns+"/"+name]
	if !ok {
		v.errorf(id, "references ConfigMap %q which the manifests do not contain", name)
		return
	}
	if key != "" {
		if _, ok := data[key]; !ok {
			v.errorf(id, "references key %q missing from ConfigMap %q", key, name)
		}
	}
}

// checkSecretKey: Secrets may legitimately live outside the manifests (created by the SRE),
// so only a Secret that IS shipped is checked for the key.
func (v *validator) checkSecretKey(id, ns, name, key string, optional *bool) {
	keys, ok := v.secrets[ns+"/"+name]
	if ok && !keys[key] && !isTrue(optional) {
		v.errorf(id, "references key %q missing from Secret %q", key, name)
	}
}

func (v *validator) matchingPods(ns string, sel labels.Selector) []podOwner {
	var out []podOwner
	for _, p := range v.pods {
		if p.namespace == ns && p.kind != "Job" && sel.Matches(labels.Set(p.labels)) {
			out = append(out, p)
		}
	}
	return out
}

func (v *validator) crossChecks() {
	for _, p := range v.pods {
		v.checkPodSpec(p)
	}
	for _, s := range v.services {
		id := "Service/" + s.Name
		if len(s.Spec.Selector) == 0 {
			continue // selector-less Service: endpoints are managed by hand
		}
		pods := v.matchingPods(nsOf(s), labels.SelectorFromSet(s.Spec.Selector))
		if len(pods) == 0 {
			v.errorf(id, "selector %v matches no workload", s.Spec.Selector)
			continue
		}
		for _, sp := range s.Spec.Ports {
			if sp.TargetPort.Type != intstr.String {
				continue
			}
			for _, p := range pods {
				if !podHasPortName(p.spec, sp.TargetPort.StrVal) {
					v.errorf(id, "targetPort %q is not a named port of %s/%s", sp.TargetPort.StrVal, p.kind, p.name)
				}
			}
		}
	}
	for _, h := range v.hpas {
		id := "HorizontalPodAutoscaler/" + h.Name
		ref := h.Spec.ScaleTargetRef
		found := false
		for _, p := range v.pods {
			if p.kind == ref.Kind && p.name == ref.Name && p.namespace == nsOf(h) {
				found = true
			}
		}
		if !found {
			v.errorf(id, "scaleTargetRef %s/%s is not in the manifests", ref.Kind, ref.Name)
		}
		if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			v.errorf(id, "minReplicas %d > maxReplicas %d", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if h.Spec.MaxReplicas < 1 {
			v.errorf(id, "maxReplicas must be >= 1")
		}
		if len(h.Spec.Metrics) == 0 {
			v.errorf(id, "no metrics: the HPA would never scale")
		}
	}
	for _, b := range v.pdbs {
		id := "PodDisruptionBudget/" + b.Name
		if (b.Spec.MinAvailable == nil) == (b.Spec.MaxUnavailable == nil) {
			v.errorf(id, "set exactly one of minAvailable and maxUnavailable")
		}
		if b.Spec.Selector == nil {
			v.errorf(id, "spec.selector is required")
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			v.errorf(id, "spec.selector: %v", err)
			continue
		}
		if len(v.matchingPods(nsOf(b), sel)) == 0 {
			v.errorf(id, "selector matches no workload")
		}
	}
}

func podHasPortName(spec *corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

func splitDocuments(r io.Reader) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

func render(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	return resMap.AsYaml()
}

// Validate checks a rendered manifest stream; exported for the Go test.
func Validate(stream []byte) (count int, errs []string, err error) {
	docs, err := splitDocuments(bytes.NewReader(stream))
	if err != nil {
		return 0, nil, err
	}
	v := &validator{
		seen:       map[string]bool{},
		configMaps: map[string]map[string]string{},
		secrets:    map[string]map[string]bool{},
	}
	dec := serializer.NewCodecFactory(newScheme(), serializer.EnableStrict).UniversalDeserializer()
	for i, doc := range docs {
		v.decode(dec, doc, i)
	}
	v.crossChecks()
	sort.Strings(v.errs)
	return v.count, v.errs, nil
}

func main() {
	out := flag.String("o", "", "write the rendered manifests to this file")
	file := flag.String("f", "", "validate this rendered manifest stream instead of rendering ('-' = stdin)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: k8svalidate [-o out.yaml] KUSTOMIZATION_DIR | k8svalidate -f FILE")
		flag.PrintDefaults()
	}
	flag.Parse()

	var stream []byte
	var err error
	switch {
	case *file != "" && flag.NArg() == 0:
		if *file == "-" {
			stream, err = io.ReadAll(os.Stdin)
		} else {
			stream, err = os.ReadFile(*file)
		}
	case *file == "" && flag.NArg() == 1:
		stream, err = render(flag.Arg(0))
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "k8svalidate: %v\n", err)
		os.Exit(2)
	}
	if *out != "" {
		if err := os.WriteFile(*out, stream, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "k8svalidate: %v\n", err)
			os.Exit(2)
		}
	}
	count, errs, err := Validate(stream)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k8svalidate: %v\n", err)
		os.Exit(2)
	}
	for _, e := range errs {
		fmt.Println(e)
	}
	fmt.Printf("k8svalidate: %d objects, %d errors\n", count, len(errs))
	if len(errs) > 0 {
		os.Exit(1)
	}
}
