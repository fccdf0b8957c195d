// The MLA latent cache seen through MLA_CACHE_SLOTS bindings starting at MLA_CACHE_BINDING. A cache larger than one
// binding or one allocation lives in power-of-two pieces (memory/memory.h); element i of the cache tensor is
// element cache_off + i of the slots laid end to end, in slot (cache_off + i) >> cache_shift. Loads switch on the
// slot (uniform in practice: a page holds hundreds of tokens), which needs no descriptor-indexing feature.
// Define MLA_CACHE_WRITABLE for mla_cache_store.
#ifndef HALO_MLA_CACHE_GLSL
#define HALO_MLA_CACHE_GLSL

#ifdef MLA_CACHE_WRITABLE
#define HALO_MLA_SLOT HALO_TENSOR_RW
#else
#define HALO_MLA_SLOT HALO_TENSOR_RO
#endif
HALO_MLA_SLOT(MLA_CACHE_BINDING + 0, kvc0)
HALO_MLA_SLOT(MLA_CACHE_BINDING + 1, kvc1)
HALO_MLA_SLOT(MLA_CACHE_BINDING + 2, kvc2)
HALO_MLA_SLOT(MLA_CACHE_BINDING + 3, kvc3)
HALO_MLA_SLOT(MLA_CACHE_BINDING + 4, kvc4)
HALO_MLA_SLOT(MLA_CACHE_BINDING + 5, kvc5)
HALO_MLA_SLOT(MLA_CACHE_BINDING + 6, kvc6)
HALO_MLA_SLOT(MLA_CACHE_BINDING + 7, kvc7)

float mla_cache_load(uint i) {
    const uint e = p.cache_off + i, s = e >> p.cache_shift, l = e - (s << p.cache_shift), dt = p.cache_dt;
    switch (s) {
    case 0u: return kvc0_load(l, dt);
    case 1u: return kvc1_load(l, dt);
    case 2u: return kvc2_load(l, dt);
    case 3u: return kvc3_load(l, dt);
    case 4u: return kvc4_load(l, dt);
    case 5u: return kvc5_load(l, dt);
    case 6u: return kvc6_load(l, dt);
    default: return kvc7_load(l, dt);
    }
}

#ifdef MLA_CACHE_WRITABLE
void mla_cache_store(uint i, float v) {
    const uint e = p.cache_off + i, s = e >> p.cache_shift, l = e - (s << p.cache_shift), dt = p.cache_dt;
    switch (s) {
    case 0u: kvc0_store(l, dt, v); break;
    case 1u: kvc1_store(l, dt, v); break;
    case 2u: kvc2_store(l, dt, v); break;
    case 3u: kvc3_store(l, dt, v); break;
    case 4u: kvc4_store(l, dt, v); break;
    case 5u: kvc5_store(l, dt, v); break;
    case 6u: kvc6_store(l, dt, v); break;
    default: kvc7_store(l, dt, v); break;
    }
}
#endif

#endif
