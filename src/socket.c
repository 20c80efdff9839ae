/* socket.c - making sockets: TCP, UDP and Unix, listening and connecting.
 *
 * Every socket is non-blocking and close-on-exec from birth. Names are
 * resolved on the worker pool (corio_getaddrinfo); a numeric address is
 * parsed on the spot, so a literal never costs a thread hop. */
#define _GNU_SOURCE
#include "io.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int corio_socket(int domain, int type, int protocol)
{
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return -errno;
    if (corio__tls_loop)
        corio__fd_fresh_socket(corio__tls_loop, fd, (type & 0xf) == SOCK_STREAM);
    return fd;
}

/* getaddrinfo for host:port: a literal here, a name on the pool. */
static int resolve(const char *host, int port, int socktype, int flags, struct addrinfo **res)
{
    if (port < 0 || port > 65535)
        return -EINVAL;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = socktype,
                             .ai_flags = flags | AI_NUMERICSERV | AI_NUMERICHOST};
    int rc = getaddrinfo(host, service, &hints, res);
    if (rc == 0)
        return 0;
    if (rc != EAI_NONAME || !host)
        return rc == EAI_MEMORY ? -ENOMEM : -EINVAL;
    hints.ai_flags = flags | AI_NUMERICSERV | AI_ADDRCONFIG;
    return corio_getaddrinfo(host, service, &hints, res);
}

static int set_int(int fd, int level, int opt, int value)
{
    return setsockopt(fd, level, opt, &value, sizeof value) < 0 ? -errno : 0;
}

/* A socket bound to ai (and listening, for a stream), or -errno. */
static int bind_one(const struct addrinfo *ai, int backlog, int flags, bool dual_stack)
{
    int fd = corio_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        return fd;
    int rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && (flags & CORIO_REUSEPORT))
        rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && ai->ai_family == AF_INET6)
        rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, !dual_stack);
    if (rc == 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        rc = -errno;
    if (rc == 0 && ai->ai_socktype == SOCK_STREAM && listen(fd, backlog) < 0)
        rc = -errno;
    if (rc < 0) {
        corio_close(fd); /* it is in the fd table: forget it too */
        return rc;
    }
    return fd;
}

/* Bind (and listen) on host:port; NULL or "" means every address: "::"
 * taking IPv4 too, or 0.0.0.0 where IPv6 is off. */
static int bind_host(const char *host, int port, int socktype, int backlog, int flags)
{
    if (flags & ~CORIO_REUSEPORT)
        return -EINVAL;
    bool any = !host || !*host;
    struct addrinfo *res;
    int rc = resolve(any ? "::" : host, port, socktype, AI_PASSIVE, &res);
    if (rc < 0)
        return rc;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if ((rc = bind_one(ai, backlog, flags, any)) >= 0)
            break;
    freeaddrinfo(res);
    if (any && (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL))
        return bind_host("0.0.0.0", port, socktype, backlog, flags);
    return rc;
}

int corio_tcp_listen(const char *host, int port, int backlog, int flags)
{
    if (backlog <= 0)
        backlog = SOMAXCONN;
    return bind_host(host, port, SOCK_STREAM, backlog, flags);
}

int corio_udp_bind(const char *host, int port, int flags)
{
    return bind_host(host, port, SOCK_DGRAM, 0, flags);
}

/* Connect to host:port, trying each address in turn. */
static int connect_host(const char *host, int port, int socktype)
{
    if (!host || !*host)
        return -EINVAL;
    struct addrinfo *res;
    int rc = resolve(host, port, socktype, 0, &res);
    if (rc < 0)
        return rc;
    rc = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = corio_socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            rc = fd;
            continue;
        }
        rc = corio_connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0) {
            rc = fd;
            break;
        }
        corio_close(fd);
        if (rc == -ECANCELED)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

int corio_tcp_connect(const char *host, int port)
{
    return connect_host(host, port, SOCK_STREAM);
}

int corio_udp_connect(const char *host, int port)
{
    return connect_host(host, port, SOCK_DGRAM);
}

/* The address of a Unix socket path, for type SOCK_STREAM or SOCK_DGRAM. */
static int unix_addr(const char *path, int type, struct sockaddr_un *sun)
{
    if (!path || !*path)
        return -EINVAL;
    if (strlen(path) >= sizeof sun->sun_path)
        return -ENAMETOOLONG;
    if (type != SOCK_STREAM && type != SOCK_DGRAM)
        return -EINVAL;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, path);
    return 0;
}

int corio_unix_listen(const char *path, int type, int backlog)
{
    struct sockaddr_un sun;
    int rc = unix_addr(path, type, &sun);
    if (rc < 0)
        return rc;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EADDRINUSE; /* never unlink what is not a socket */
        unlink(path);           /* a stale socket from an earlier run */
    }
    int fd = corio_socket(AF_UNIX, type, 0);
    if (fd < 0)
        return fd;
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        (type == SOCK_STREAM && listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0)) {
        rc = -errno;
        corio_close(fd);
        return rc;
    }
    return fd;
}

int corio_unix_connect(const char *path, int type)
{
    struct sockaddr_un sun;
    int rc = unix_addr(path, type, &sun);
    if (rc < 0)
        return rc;
    int fd = corio_socket(AF_UNIX, type, 0);
    if (fd < 0)
        return fd;
    rc = corio_connect(fd, (struct sockaddr *)&sun, sizeof sun);
    if (rc < 0) {
        corio_close(fd);
        return rc;
    }
    return fd;
}

int corio_socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

int corio_set_nodelay(int fd, int on)
{
    return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on != 0);
}
