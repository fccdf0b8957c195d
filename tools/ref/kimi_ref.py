#!/usr/bin/python3
"""A second, independent whole-model reference for Kimi-Linear: plain float64 numpy, written from the model's math
(the KIMI_LINEAR specification) without reference to the engine's code, so that a misreading shared by the engine's
ops/reference and its plugins is not repeated here. Token-by-token KDA recurrence and full causal-softmax MLA.
It reproduces the golden tiny model's float32 logits bit for bit; tests/xcheck runs it against the engine on model
configurations the golden does not cover.

Usage: kimi_ref.py MODEL_DIR --ids 1,2,3 [--biased] [--out logits.npy]   (or --prompt-json prompt.json)
Needs numpy (Debian: python3-numpy).
"""
import json, os, struct, sys, argparse
import numpy as np

DT = np.float64  # set kimi_ref.DT = np.float32 before constructing Kimi to see float32 rounding


# ---------------------------------------------------------------- safetensors
def _read_safetensors(path):
    out = {}
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        hdr = json.loads(f.read(n).decode('utf-8'))
        base = 8 + n
        data = f.read()
    for name, info in hdr.items():
        if name == '__metadata__':
            continue
        dt = info['dtype']
        shape = info['shape']
        a, b = info['data_offsets']
        raw = data[a:b]
        if dt == 'BF16':
            u = np.frombuffer(raw, dtype='<u2').astype(np.uint32) << 16
            arr = u.view(np.float32)
        elif dt == 'F16':
            arr = np.frombuffer(raw, dtype='<f2')
        elif dt == 'F32':
            arr = np.frombuffer(raw, dtype='<f4')
        elif dt == 'F64':
            arr = np.frombuffer(raw, dtype='<f8')
        else:
            raise ValueError('unsupported dtype %s for %s' % (dt, name))
        out[name] = arr.astype(DT).reshape(shape)
    return out


def load_weights(d):
    idx = os.path.join(d, 'model.safetensors.index.json')
    W = {}
    if os.path.exists(idx):
        wm = json.load(open(idx))['weight_map']
        for shard in sorted(set(wm.values())):
            W.update(_read_safetensors(os.path.join(d, shard)))
    else:
        W.update(_read_safetensors(os.path.join(d, 'model.safetensors')))
    return W


# ---------------------------------------------------------------- helpers
def silu(x):
    return x / (1.0 + np.exp(-x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(z):
    # beta=1, threshold=20
    return np.where(z > 20.0, z, np.log1p(np.exp(np.minimum(z, 20.0))))


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def lin(x, w):
    return x @ w.T


# ---------------------------------------------------------------- model
class Kimi:
    def __init__(self, d, biased=False):
        self.cfg = json.load(open(os.path.join(d, 'config.json')))
        self.W = load_weights(d)
        self.biased = biased
        self.margins = []
        c = self.cfg
        la = c['linear_attn_config']
        self.L = c['num_hidden_layers']
        kda = la.get('kda_layers') or []
        self.is_kda = [(i + 1) in kda for i in range(self.L)]
        self.eps = c['rms_norm_eps']
        self.kv_eps = self.eps  # kv_a_layernorm eps (HF would use 1e-6; vLLM/llama.cpp rms_norm_eps)

    def g(self, name):
        return self.W[name]

    def is_moe(self, i):
        c = self.cfg
        ne = c.get('num_experts')
        if not ne:
            return False
        fk = c.get('first_k_dense_replace', 0) or 0
        fr = c.get('moe_layer_freq', 1) or 1
        return i >= fk and i % fr == 0

    # ---- KDA
    def kda(self, i, x):
        c = self.cfg
        la = c['linear_attn_config']
        H = la['num_heads']
        K = la['head_dim']
        V = K
        Wc = la.get('short_conv_kernel_size', 4)
        p = 'model.layers.%d.self_attn.' % i
        T = x.shape[0]

        def conv(z, w):  # z [T, D], w [D,1,W]
            w = w.reshape(w.shape[0], -1)
            Wk = w.shape[1]
            assert Wk == Wc, (Wk, Wc)
            zp = np.concatenate([np.zeros((Wk - 1, z.shape[1]), dtype=z.dtype), z], axis=0)
            y = np.zeros_like(z)
            for j in range(Wk):
                # w[:, j] multiplies x_{t-(Wk-1)+j}
                y += w[:, j][None, :] * zp[j:j + T]
            return silu(y)

        q = conv(lin(x, self.g(p + 'q_proj.weight')), self.g(p + 'q_conv1d.weight'))
        k = conv(lin(x, self.g(p + 'k_proj.weight')), self.g(p + 'k_conv1d.weight'))
        v = conv(lin(x, self.g(p + 'v_proj.weight')), self.g(p + 'v_conv1d.weight'))
        f = lin(lin(x, self.g(p + 'f_a_proj.weight')), self.g(p + 'f_b_proj.weight'))
        z = f + self.g(p + 'dt_bias').reshape(-1)
        A = self.g(p + 'A_log').reshape(-1)  # [H]
        gl = -np.exp(A)[None, :, None] * softplus(z).reshape(T, H, K)
        beta = sigmoid(lin(x, self.g(p + 'b_proj.weight')))  # [T,H]
        q = q.reshape(T, H, K)
        k = k.reshape(T, H, K)
        v = v.reshape(T, H, V)
        q = q / np.sqrt(np.sum(q * q, -1, keepdims=True) + 1e-6)
        k = k / np.sqrt(np.sum(k * k, -1, keepdims=True) + 1e-6)
        q = q * (K ** -0.5)
        S = np.zeros((H, K, V), dtype=x.dtype)
        o = np.zeros((T, H, V), dtype=x.dtype)
        for t in range(T):
            S = S * np.exp(gl[t])[:, :, None]
            pr = np.einsum('hk,hkv->hv', k[t], S)
            u = beta[t][:, None] * (v[t] - pr)
            S = S + k[t][:, :, None] * u[:, None, :]
            o[t] = np.einsum('hk,hkv->hv', q[t], S)
        gg = lin(lin(x, self.g(p + 'g_a_proj.weight')), self.g(p + 'g_b_proj.weight')).reshape(T, H, V)
        o = o / np.sqrt(np.mean(o * o, -1, keepdims=True) + self.eps)
        o = o * self.g(p + 'o_norm.weight').reshape(-1) * sigmoid(gg)
        return lin(o.reshape(T, H * V), self.g(p + 'o_proj.weight'))

    # ---- MLA
    def mla(self, i, x):
        c = self.cfg
        H = c['num_attention_heads']
        dn = c['qk_nope_head_dim']
        dr = c['qk_rope_head_dim']
        dv = c['v_head_dim']
        R = c['kv_lora_rank']
        p = 'model.layers.%d.self_attn.' % i
        T = x.shape[0]
        q = lin(x, self.g(p + 'q_proj.weight')).reshape(T, H, dn + dr)
        ckv = lin(x, self.g(p + 'kv_a_proj_with_mqa.weight'))
        cc, krot = ckv[:, :R], ckv[:, R:]
        assert krot.shape[1] == dr
        cn = rmsnorm(cc, self.g(p + 'kv_a_layernorm.weight'), self.kv_eps)
        kv = lin(cn, self.g(p + 'kv_b_proj.weight')).reshape(T, H, dn + dv)
        knope, vv = kv[:, :, :dn], kv[:, :, dn:]
        Kh = np.concatenate([knope, np.broadcast_to(krot[:, None, :], (T, H, dr))], -1)
        sc = np.einsum('thd,shd->hts', q, Kh) * (dn + dr) ** -0.5
        mask = np.triu(np.ones((T, T), bool), 1)
        sc[:, mask] = -np.inf
        sc = sc - sc.max(-1, keepdims=True)
        pa = np.exp(sc)
        pa /= pa.sum(-1, keepdims=True)
        o = np.einsum('hts,shd->thd', pa, vv)
        return lin(o.reshape(T, H * dv), self.g(p + 'o_proj.weight'))

    # ---- FFN
    def mlp(self, pfx, x):
        return lin(silu(lin(x, self.g(pfx + 'gate_proj.weight'))) * lin(x, self.g(pfx + 'up_proj.weight')),
                   self.g(pfx + 'down_proj.weight'))

    def moe(self, i, x):
        c = self.cfg
        p = 'model.layers.%d.block_sparse_moe.' % i
        E = c['num_experts']
        k = c['num_experts_per_token']
        G = c.get('num_expert_group', 1) or 1
        TG = c.get('topk_group', 1) or 1
        rsf = c.get('routed_scaling_factor', 1.0)
        renorm = c.get('moe_renormalize', True)
        T = x.shape[0]
        s = sigmoid(lin(x, self.g(p + 'gate.weight')))
        b = self.g(p + 'gate.e_score_correction_bias').reshape(-1)
        sel = s + b[None, :]
        out = np.zeros_like(x)
        self.last_routing = []
        for t in range(T):
            st = sel[t].copy()
            if G > 1:
                gs = st.reshape(G, E // G)
                gscore = np.sort(gs, axis=1)[:, -2:].sum(1)
                keep = np.argsort(-gscore, kind='stable')[:TG]
                m = np.full(G, True)
                m[keep] = False
                gs = gs.copy()
                gs[m] = -np.inf
                st = gs.reshape(E)
            order = np.argsort(-st, kind='stable')
            idx = order[:k]
            mg = st[order[k - 1]] - st[order[k]] if k < E else np.inf
            if G > 1:
                go = np.sort(gscore)[::-1]
                if TG < G:
                    mg = min(mg, go[TG - 1] - go[TG])
            self.margins.append((i, t, mg, tuple(sorted(idx.tolist()))))
            w = (sel[t][idx] if self.biased else s[t][idx]).copy()
            if renorm:
                w = w / (w.sum() + 1e-20)
            w = w * rsf
            self.last_routing.append(idx)
            for wi, e in zip(w, idx):
                ep = p + 'experts.%d.' % e
                h = silu(lin(x[t], self.g(ep + 'w1.weight'))) * lin(x[t], self.g(ep + 'w3.weight'))
                out[t] += wi * lin(h, self.g(ep + 'w2.weight'))
        if (c.get('num_shared_experts', 0) or 0) > 0:
            out += self.mlp(p + 'shared_experts.', x)
        return out

    def forward(self, ids):
        W = self.W
        h = W['model.embed_tokens.weight'][np.asarray(ids)]
        for i in range(self.L):
            p = 'model.layers.%d.' % i
            a = rmsnorm(h, W[p + 'input_layernorm.weight'], self.eps)
            h = h + (self.kda(i, a) if self.is_kda[i] else self.mla(i, a))
            m = rmsnorm(h, W[p + 'post_attention_layernorm.weight'], self.eps)
            h = h + (self.moe(i, m) if self.is_moe(i) else self.mlp(p + 'mlp.', m))
        h = rmsnorm(h, W['model.norm.weight'], self.eps)
        if self.cfg.get('tie_word_embeddings', False) or 'lm_head.weight' not in W:
            head = W['model.embed_tokens.weight']
        else:
            head = W['lm_head.weight']
        return lin(h, head)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('--ids')
    ap.add_argument('--prompt-json')
    ap.add_argument('--biased', action='store_true')
    ap.add_argument('--out')
    a = ap.parse_args()
    if a.prompt_json:
        ids = json.load(open(a.prompt_json))['ids']
    else:
        ids = [int(t) for t in a.ids.split(',')]
    m = Kimi(a.model, biased=a.biased)
    lg = m.forward(ids)
    if a.out:
        np.save(a.out, lg)
    print('logits', lg.shape, 'max|.|', np.abs(lg).max())


if __name__ == '__main__':
    main()
