/*
 * kalloc/vec.h - a typed growable vector on any allocator (the kernel's KVec,
 * Vec<T, A>), built on kalloc_realloc with the old layout always known, so
 * backends with sized free get it.
 *
 *     KVEC_DEFINE(intvec, int)           // struct intvec + intvec_* functions
 *     struct intvec v = intvec_new(kalloc_default());
 *     if (intvec_push(&v, 42, KALLOC_KERNEL)) { ...kalloc_errmsg()... }
 *     intvec_free(&v);
 *
 * Generated functions (V = struct name, T = element type):
 *   V    name_new(kalloc_t *a)                       empty, no allocation
 *   int  name_with_capacity(V *v, kalloc_t *a, size_t n, kalloc_flags_t f)
 *   int  name_reserve(V *v, size_t additional, kalloc_flags_t f)
 *   int  name_push(V *v, T x, kalloc_flags_t f)
 *   int  name_pop(V *v, T *out)                      1 if an element was popped
 *   void name_truncate(V *v, size_t len)             no-op if len >= v->len
 *   void name_clear(V *v)                            keeps the capacity
 *   void name_free(V *v)                             back to empty
 *   T   *name_into_raw_parts(V *v, size_t *len, size_t *cap)   v becomes empty
 *   V    name_from_raw_parts(kalloc_t *a, T *ptr, size_t len, size_t cap)
 * int-returning functions give KALLOC_OK or a kalloc_err; on error the vector
 * is unchanged.  An empty vector's ptr is the zero-size sentinel, never NULL.
 */
#ifndef KALLOC_VEC_H
#define KALLOC_VEC_H

#include <kalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Grows *ptr (an array of *cap elements, `len` in use) to hold at least
 * len + additional elements, at least doubling.  KALLOC_OK or an error
 * (KALLOC_EOVERFLOW when the element count overflows); *ptr and *cap change
 * only on success.
 */
KALLOC_API int kalloc_vec_reserve(kalloc_t *a, void **ptr, size_t *cap,
				  size_t len, size_t additional,
				  size_t elem_size, size_t elem_align,
				  kalloc_flags_t flags);

#define KVEC_DEFINE(name, T)                                                  \
	struct name {                                                         \
		T *ptr;                                                       \
		size_t len, cap;                                              \
		kalloc_t *alloc;                                              \
	};                                                                    \
	static inline struct name name##_new(kalloc_t *a)                     \
	{                                                                     \
		struct name v = { (T *)kalloc_sentinel(_Alignof(T)), 0, 0, a }; \
		return v;                                                     \
	}                                                                     \
	static inline int name##_reserve(struct name *v, size_t additional,   \
					 kalloc_flags_t f)                    \
	{                                                                     \
		void *p = v->ptr;                                             \
		if (v->cap - v->len >= additional)                            \
			return KALLOC_OK;                                     \
		int err = kalloc_vec_reserve(v->alloc, &p, &v->cap, v->len,   \
					     additional, sizeof(T),           \
					     _Alignof(T), f);                 \
		v->ptr = (T *)p;                                              \
		return err;                                                   \
	}                                                                     \
	static inline int name##_with_capacity(struct name *v, kalloc_t *a,   \
					       size_t n, kalloc_flags_t f)    \
	{                                                                     \
		struct name fresh = name##_new(a);                            \
		int err = name##_reserve(&fresh, n, f);                       \
		if (!err)                                                     \
			*v = fresh;                                           \
		return err;                                                   \
	}                                                                     \
	static inline int name##_push(struct name *v, T x, kalloc_flags_t f)  \
	{                                                                     \
		int err = name##_reserve(v, 1, f);                            \
		if (!err)                                                     \
			v->ptr[v->len++] = x;                                 \
		return err;                                                   \
	}                                                                     \
	static inline int name##_pop(struct name *v, T *out)                  \
	{                                                                     \
		if (!v->len)                                                  \
			return 0;                                             \
		*out = v->ptr[--v->len];                                      \
		return 1;                                                     \
	}                                                                     \
	static inline void name##_truncate(struct name *v, size_t len)        \
	{                                                                     \
		if (len < v->len)                                             \
			v->len = len;                                         \
	}                                                                     \
	static inline void name##_clear(struct name *v)                       \
	{                                                                     \
		v->len = 0;                                                   \
	}                                                                     \
	static inline void name##_free(struct name *v)                        \
	{                                                                     \
		kalloc_free(v->alloc, v->ptr,                                 \
			    KALLOC_LAYOUT(v->cap * sizeof(T), _Alignof(T)));  \
		*v = name##_new(v->alloc);                                    \
	}                                                                     \
	static inline T *name##_into_raw_parts(struct name *v, size_t *len,   \
					       size_t *cap)                   \
	{                                                                     \
		T *p = v->ptr;                                                \
		*len = v->len;                                                \
		*cap = v->cap;                                                \
		*v = name##_new(v->alloc);                                    \
		return p;                                                     \
	}                                                                     \
	static inline struct name name##_from_raw_parts(kalloc_t *a, T *ptr,  \
							size_t len, size_t cap) \
	{                                                                     \
		struct name v = { ptr, len, cap, a };                         \
		return v;                                                     \
	}

#ifdef __cplusplus
}
#endif
#endif /* KALLOC_VEC_H */
