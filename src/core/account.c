/*
 * Accounting domains (KALLOC_ACCOUNT): a byte counter with an optional
 * limit, and a current domain per thread.  Invariant: usage is the sum of
 * the charges of the live blocks allocated into the domain; a charge that
 * would pass the limit is refused whole, never partly applied.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>

struct kalloc_domain {
	char name[64];
	size_t limit; /* 0: none */
	_Atomic size_t usage, peak, failures;
};

static struct kalloc_domain root = { .name = "root" };
static FAST_TLS struct kalloc_domain *current;

/* Domains live in their own pages: never malloc (the shim may be active). */
kalloc_domain_t *kalloc_domain_create(const char *name, size_t limit)
{
	struct kalloc_domain *d = mmap(NULL, sizeof(*d), PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d == MAP_FAILED) {
		kalloc__error(KALLOC_ENOMEM, "no memory for domain '%s'",
			      name ? name : "");
		return NULL;
	}
	snprintf(d->name, sizeof(d->name), "%s", name ? name : "");
	d->limit = limit;
	return d;
}

int kalloc_domain_destroy(kalloc_domain_t *d)
{
	if (!d || d == &root)
		return KALLOC_OK;
	size_t used = atomic_load(&d->usage);
	if (used)
		return kalloc__error(KALLOC_EINVAL,
				     "domain '%s' still holds %zu bytes; free them first",
				     d->name, used);
	munmap(d, sizeof(*d));
	return KALLOC_OK;
}

kalloc_domain_t *kalloc_domain_enter(kalloc_domain_t *d)
{
	struct kalloc_domain *prev = current;
	current = d;
	return prev;
}

size_t kalloc_domain_usage(const kalloc_domain_t *d)
{
	return atomic_load(&(d ? d : &root)->usage);
}

size_t kalloc_domain_peak(const kalloc_domain_t *d)
{
	return atomic_load(&(d ? d : &root)->peak);
}

size_t kalloc_domain_failures(const kalloc_domain_t *d)
{
	return atomic_load(&(d ? d : &root)->failures);
}

struct kalloc_domain *kalloc__current_domain(void)
{
	return current ? current : &root;
}

int kalloc__charge(struct kalloc_domain *d, size_t bytes, bool force)
{
	size_t now = atomic_load(&d->usage);
	do {
		if (!force && d->limit &&
		    (bytes > d->limit || now > d->limit - bytes)) {
			atomic_fetch_add(&d->failures, 1);
			return kalloc__error(KALLOC_ELIMIT,
					     "accounting domain '%s': %zu more bytes "
					     "would pass its limit (%zu of %zu used)",
					     d->name, bytes, now, d->limit);
		}
	} while (!atomic_compare_exchange_weak(&d->usage, &now, now + bytes));
	size_t peak = atomic_load(&d->peak);
	while (now + bytes > peak &&
	       !atomic_compare_exchange_weak(&d->peak, &peak, now + bytes))
		;
	return KALLOC_OK;
}

void kalloc__uncharge(struct kalloc_domain *d, size_t bytes)
{
	atomic_fetch_sub(&d->usage, bytes);
}
