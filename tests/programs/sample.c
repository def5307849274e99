/* A small program for the C compiler test: enough code for the optimiser
 * to work, and output that depends on all of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *left, *right;
	unsigned key, count;
};

static struct node *insert(struct node *t, unsigned key)
{
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			exit(1);
		t->key = key;
	}
	if (key < t->key)
		t->left = insert(t->left, key);
	else if (key > t->key)
		t->right = insert(t->right, key);
	t->count++;
	return t;
}

static unsigned long walk(const struct node *t, unsigned depth)
{
	if (!t)
		return 0;
	return walk(t->left, depth + 1) + (unsigned long)t->key * depth +
	       walk(t->right, depth + 1);
}

static void release(struct node *t)
{
	if (t) {
		release(t->left);
		release(t->right);
		free(t);
	}
}

static int cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	struct node *t = NULL;
	unsigned seed = 12345, keys[5000];
	for (int i = 0; i < 5000; i++) {
		seed = seed * 1103515245u + 12345u;
		keys[i] = (seed >> 8) % 100000;
		t = insert(t, keys[i]);
	}
	qsort(keys, 5000, sizeof(keys[0]), cmp);
	char *buf = NULL;
	size_t len = 0;
	for (int i = 0; i < 5000; i += 7) {
		char item[32];
		int n = snprintf(item, sizeof(item), "%u,", keys[i]);
		char *grown = realloc(buf, len + (size_t)n + 1);
		if (!grown)
			return 1;
		buf = grown;
		memcpy(buf + len, item, (size_t)n + 1);
		len += (size_t)n;
	}
	printf("tree %lu, median %u, text %zu bytes\n", walk(t, 1), keys[2500], len);
	free(buf);
	release(t);
	return 0;
}
