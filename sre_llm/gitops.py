"""The one module that runs git (through gitpython): who is acting, what HEAD holds, commits.

Everything else in sre-llm asks this module; nothing else imports ``git``. gitpython is imported
inside the functions so that ``sre-llm validate``/``render`` never pay for it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from pathlib import Path

from sre_llm.errors import BadInput


def _repo(root: str | Path):
    import git

    try:
        return git.Repo(Path(root), search_parent_directories=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise BadInput(f"{root}: not a git repository (run `git init` there, or pass --root)") from None


def is_repo(root: str | Path) -> bool:
    """Whether ``root`` is the top of a git work tree."""
    return (Path(root) / ".git").exists()


def actor(root: str | Path | None = None) -> str:
    """Who is acting, for audit records and commit trailers.

    ``$SRE_LLM_ACTOR`` wins (CI sets it to the workflow identity); then git's ``user.name`` /
    ``user.email`` as git itself would use them for ``root``; then the login name.
    """
    if os.environ.get("SRE_LLM_ACTOR"):
        return os.environ["SRE_LLM_ACTOR"]
    name = email = None
    try:
        import git

        if root is not None and is_repo(root):
            reader = git.Repo(Path(root)).config_reader()
        else:
            reader = git.GitConfigParser(
                [p for p in (Path.home() / ".gitconfig", Path("/etc/gitconfig")) if p.is_file()], read_only=True
            )
        name = reader.get_value("user", "name", default=None) or None
        email = reader.get_value("user", "email", default=None) or None
    except Exception:  # noqa: BLE001, S110 - an unreadable git config must not stop an audit record
        pass
    if name and email:
        return f"{name} <{email}>"
    if name:
        return str(name)
    return os.environ.get("USER") or _login()


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return f"uid:{os.getuid()}"


def head(root: str | Path) -> str | None:
    """The commit HEAD points at, or None in a repository without commits."""
    repo = _repo(root)
    try:
        return repo.head.commit.hexsha
    except ValueError:
        return None


def is_dirty(root: str | Path) -> bool:
    """Whether tracked files differ from HEAD (untracked files do not count)."""
    return _repo(root).is_dirty(untracked_files=False)


def committed_bytes(root: str | Path, relpath: str, rev: str = "HEAD") -> bytes | None:
    """The content of ``relpath`` at ``rev``, or None when it is not there (or nothing is committed)."""
    import git

    if not is_repo(root):
        return None
    repo = _repo(root)
    try:
        blob = repo.commit(rev).tree / Path(relpath).as_posix()
    except (ValueError, KeyError, git.BadName):
        return None
    return blob.data_stream.read()


def path_history(root: str | Path, relpath: str, limit: int = 1000) -> list[str]:
    """Commits (newest first, at most ``limit``) from HEAD whose change touched ``relpath``."""
    if not is_repo(root) or head(root) is None:
        return []
    return [c.hexsha for c in _repo(root).iter_commits("HEAD", paths=Path(relpath).as_posix(), max_count=limit)]


def commit_paths(root: str | Path, paths: Sequence[str | Path], message: str) -> str:
    """Commit exactly ``paths`` (relative to ``root``) with ``message``; return the new commit.

    ``git commit --only`` leaves anything else the user had staged alone: a promotion must never
    sweep unrelated work into its commit.
    """
    import git

    repo = _repo(root)
    rels = [Path(p).as_posix() for p in paths]
    require_identity(root)
    try:
        repo.git.add("--", *rels)
        if not repo.git.status("--porcelain", "--", *rels).strip():
            raise BadInput(f"nothing to commit in {', '.join(rels)}")
        repo.git.commit("--only", "-m", message, "--", *rels)
    except git.GitCommandError as exc:
        raise BadInput(f"git commit failed: {_git_reason(exc)}") from None
    return repo.head.commit.hexsha


def _git_reason(exc) -> str:
    """The last line git printed; gitpython wraps it as ``stderr: '…'``."""
    text = (exc.stderr or exc.stdout or "").strip()
    text = text.removeprefix("stderr:").removeprefix("stdout:").strip().strip("'").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else str(exc)


def require_identity(root: str | Path) -> None:
    """Fail before changing anything when a commit could not be made (no repo, no identity)."""
    repo = _repo(root)
    if not _identity(repo):
        raise BadInput(
            f"{root}: git has no committer identity: set `git config user.name` and `git config user.email`"
        )


def is_ignored(root: str | Path, relpath: str) -> bool:
    """Whether git ignores ``relpath`` (``git add`` would refuse it)."""
    import git

    try:
        return bool(_repo(root).ignored(relpath))
    except git.GitCommandError:
        return False


def _identity(repo) -> bool:
    if os.environ.get("GIT_COMMITTER_NAME") and os.environ.get("GIT_COMMITTER_EMAIL"):
        return True
    reader = repo.config_reader()
    return bool(reader.get_value("user", "name", default="")) and bool(reader.get_value("user", "email", default=""))


def commit_message(rev: str, root: str | Path) -> str:
    """The full message of commit ``rev``."""
    return str(_repo(root).commit(rev).message)


def resolve(root: str | Path, rev: str) -> str | None:
    """The commit ``rev`` names (a branch, tag, ``HEAD~1``, a hash), or None when it names none."""
    import git

    if not is_repo(root):
        return None
    try:
        return _repo(root).commit(rev).hexsha
    except (ValueError, git.BadName, git.BadObject, git.GitCommandError):
        return None


def merge_base(root: str | Path, a: str, b: str) -> str | None:
    """The best common ancestor of ``a`` and ``b`` (what a pull request from ``a`` into ``b`` is
    compared with), or None when they share no history or either is missing."""
    import git

    try:
        bases = _repo(root).merge_base(a, b)
    except (ValueError, git.BadName, git.GitCommandError):
        return None
    return bases[0].hexsha if bases else None


def tree_files(root: str | Path, rev: str, prefix: str) -> dict[str, bytes]:
    """Every file under the folder ``prefix`` at commit ``rev``: repository-relative POSIX path → bytes.
    Empty when the folder is not there at ``rev``."""
    repo = _repo(root)
    try:
        tree = repo.commit(rev).tree / prefix.strip("/")
    except KeyError:
        return {}
    return {blob.path: blob.data_stream.read() for blob in tree.traverse() if blob.type == "blob"}


def add_worktree(root: str | Path, path: str | Path, branch: str) -> None:
    """A new branch ``branch`` at HEAD, checked out in a separate work tree at ``path``: the
    promotion branch `sre-llm retrain` commits on without touching the user's HEAD or files."""
    import git

    try:
        _repo(root).git.worktree("add", "-b", branch, str(path), "HEAD")
    except git.GitCommandError as exc:
        raise BadInput(f"git worktree add {branch} failed: {_git_reason(exc)}") from None


def remove_worktree(root: str | Path, path: str | Path) -> None:
    """Remove a work tree made by :func:`add_worktree` (its branch stays)."""
    import git

    try:
        _repo(root).git.worktree("remove", "--force", str(path))
    except git.GitCommandError as exc:
        raise BadInput(f"git worktree remove {path} failed: {_git_reason(exc)}") from None
