// The Erlang side of the build: finding OTP releases, and a small escript that reads and writes Erlang terms for the
// scripts (so no untrusted value is ever spliced into Erlang code: everything reaches it as argv).
import fs from 'node:fs';
import path from 'node:path';
import { compareVersions } from './common.mjs';

/** Starts each answer line of the helper's `build` command (one its compiler output is unlikely to hold). */
export const HELPER_ANSWER_PREFIX = 'enot-helper-answer';

/**
 * The escript, written to the work dir by the compile step. Answers are `key<TAB>hex(utf8 value)` lines; `build`'s
 * come after its compiler output, each line starting with HELPER_ANSWER_PREFIX and a tab.
 */
export const HELPER_ESCRIPT = String.raw`%% enot-builder helper: compile a plain project, write or read an .app file, list rebar.config deps.
%% Called as: escript helper.escript <command> <args...>
%% Interpreted, not compiled: the work is done by compile:file and file:consult, and compiling this script at every
%% start cost more than interpreting the little of it that runs.
-mode(interpret).

main(["compile", SrcDir, Ebin, Include, LibEbin]) -> compile_all(SrcDir, Ebin, Include, LibEbin);
main(["build", SrcDir, Ebin, Include, LibEbin, AppSrc, Ref, Fallback]) ->
    compile_all(SrcDir, Ebin, Include, LibEbin),
    build_answer(AppSrc, Ebin, Ref, Fallback);
main(["app", AppSrc, Ebin, Ref, Fallback, Out]) -> write_app(AppSrc, Ebin, Ref, Fallback, Out);
main(["appinfo", AppFile]) -> app_info(AppFile);
main(["deps", Config]) -> deps(Config, "");
main(["deps", Config, Script]) -> deps(Config, Script);
main(_) -> fail("usage: helper.escript compile|build|app|appinfo|deps ...", []).

%% Exit status 3: a problem with an application or config file (1 is a compile error).
fail(Format, Args) ->
    io:format(standard_error, "~ts~n", [io_lib:format(Format, Args)]),
    halt(3).

hex(Chars) ->
    Bin = unicode:characters_to_binary(Chars),
    [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin].

answer(Key, Value) -> io:format("~s\t~s~n", [Key, hex(Value)]).

%% ---- compile: every .erl under SrcDir; files that fail are retried while others keep succeeding (parse transforms
%% and behaviours defined in the project need their module compiled first).
compile_all(SrcDir, Ebin, Include, LibEbin) ->
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    true = code:add_patha(Ebin),
    _ = case LibEbin of "" -> ok; _ -> code:add_patha(LibEbin) end,
    Files = [filename:join(SrcDir, F) || F <- lists:sort(filelib:wildcard("**/*.erl", SrcDir))],
    Dirs = lists:usort([filename:dirname(F) || F <- Files]),
    Opts = [return_errors, return_warnings, debug_info, {outdir, Ebin}, {i, Include}] ++ [{i, D} || D <- Dirs],
    case compile_rounds(Files, Opts) of
        [] ->
            io:format("compiled ~b module(s)~n", [length(Files)]);
        Failed ->
            [print_messages(Errors, "") || {_, Errors} <- Failed],
            halt(1)
    end.

compile_rounds(Files, Opts) ->
    Failed = [{F, E} || F <- Files, {error, E} <- [compile_one(F, Opts)]],
    case length(Failed) of
        0 -> [];
        N when N < length(Files) -> compile_rounds([F || {F, _} <- Failed], Opts);
        _ -> Failed
    end.

compile_one(File, Opts) ->
    case compile:file(File, Opts) of
        {ok, _Mod, Warnings} ->
            print_messages(Warnings, "Warning: ");
        {error, Errors, _Warnings} ->
            {error, Errors};
        error ->
            {error, [{File, [{none, ?MODULE, compile_failed}]}]}
    end.

print_messages(Items, Prefix) ->
    [[io:format("~ts~ts: ~ts~ts~n", [File, loc(Loc), Prefix, describe(Mod, Desc)]) || {Loc, Mod, Desc} <- Es]
     || {File, Es} <- Items],
    ok.

describe(?MODULE, compile_failed) -> "compilation failed";
describe(Mod, Desc) ->
    try Mod:format_error(Desc) catch _:_ -> io_lib:format("~tp", [Desc]) end.

loc({L, C}) when is_integer(L), is_integer(C) -> io_lib:format(":~b:~b", [L, C]);
loc(L) when is_integer(L) -> io_lib:format(":~b", [L]);
loc(_) -> "".

%% ---- app: <name>.app (written to Out) from an .app.src (or from nothing), with modules filled in from Ebin and a
%% non-string vsn replaced by the ref.
write_app(AppSrc, Ebin, Ref, Fallback, Out) ->
    {Name, Vsn, Text} = app_term(AppSrc, Ebin, Ref, Fallback),
    ok = file:write_file(Out, Text),
    answer("name", atom_to_list(Name)),
    answer("vsn", Vsn).

%% ---- build: after compile_all, the .app as write_app makes it, but as answers (the text hex-encoded too): the build
%% writes the file itself, outside the sandbox this runs in. Without an .app.src the first regular ebin/*.app is the
%% source, as for the app command.
build_answer(AppSrc0, Ebin, Ref, Fallback) ->
    AppSrc = case AppSrc0 of
                 "" ->
                     Regular = [F || F <- lists:sort(filelib:wildcard("*.app", Ebin)),
                                     {ok, I} <- [file:read_link_info(filename:join(Ebin, F))], element(3, I) =:= regular],
                     case Regular of [First | _] -> filename:join(Ebin, First); [] -> "" end;
                 _ -> AppSrc0
             end,
    {Name, Vsn, Text} = app_term(AppSrc, Ebin, Ref, Fallback),
    Tagged = fun(Key, Value) -> io:format("${HELPER_ANSWER_PREFIX}\t~s\t~s~n", [Key, hex(Value)]) end,
    Tagged("name", atom_to_list(Name)),
    Tagged("vsn", Vsn),
    Tagged("app", Text).

%% {Name, Vsn, the .app file's text}.
app_term(AppSrc, Ebin, Ref, Fallback) ->
    {Name, Props0} =
        case AppSrc of
            "" ->
                {list_to_atom(Fallback), [{description, ""}, {registered, []}, {applications, [kernel, stdlib]}]};
            _ ->
                case file:consult(AppSrc) of
                    {ok, [{application, N, P}]} when is_atom(N), is_list(P) -> {N, P};
                    {ok, _} -> fail("~ts does not hold one {application, Name, Properties} term", [AppSrc]);
                    {error, Reason} -> fail("cannot read ~ts: ~ts", [AppSrc, file:format_error(Reason)])
                end
        end,
    Mods = lists:sort([list_to_atom(filename:basename(F, ".beam")) || F <- filelib:wildcard("*.beam", Ebin)]),
    Vsn = case proplists:get_value(vsn, Props0) of
              V when is_list(V), V =/= [] ->
                  case io_lib:printable_unicode_list(V) of true -> V; false -> Ref end;
              _ -> Ref
          end,
    Props = lists:keystore(modules, 1, lists:keystore(vsn, 1, Props0, {vsn, Vsn}), {modules, Mods}),
    Text = io_lib:format("~tp.~n", [{application, Name, Props}]),
    {Name, Vsn, unicode:characters_to_binary(["%% coding: utf-8\n", Text])}.

app_info(AppFile) ->
    case file:consult(AppFile) of
        {ok, [{application, N, P}]} when is_atom(N), is_list(P) ->
            answer("name", atom_to_list(N)),
            case proplists:get_value(vsn, P) of
                V when is_list(V) -> answer("vsn", V);
                V -> answer("vsn", io_lib:format("~tp", [V]))
            end;
        {ok, _} -> fail("~ts does not hold one {application, Name, Properties} term", [AppFile]);
        {error, Reason} -> fail("cannot read ~ts: ~ts", [AppFile, file:format_error(Reason)])
    end.

%% ---- deps: one answer line per dependency and per plugin of a rebar.config, tagged with the answer prefix (so that
%% what a rebar.config.script prints is never taken for an answer):
%%   dep <TAB> hex(name) <TAB> kind <TAB> hex(url, or the hex package's name) <TAB> hex(rev)
%%   plugin <TAB> hex(description)
%% With Script (a rebar.config.script) the config is what the script evaluates to, as rebar3 runs it: CONFIG bound to
%% rebar.config's terms (or [] without one) and SCRIPT to the script's path. That is the repository's code: the build
%% runs this command in the offline sandbox, and only the answers leave it.
deps(Config, Script) ->
    Terms = case {file:consult(Config), Script} of
                {{ok, T}, _} -> T;
                {{error, enoent}, S} when S =/= "" -> [];
                {{error, Reason}, _} -> fail("cannot read ~ts: ~ts", [Config, file:format_error(Reason)])
            end,
    Final = case Script of
                "" -> Terms;
                _ ->
                    case file:script(Script, erl_eval:add_binding('SCRIPT', Script, erl_eval:add_binding('CONFIG', Terms, erl_eval:new_bindings()))) of
                        {ok, L} when is_list(L) -> L;
                        {ok, _} -> fail("~ts did not evaluate to a list of terms", [Script]);
                        {error, R} -> fail("evaluating ~ts failed: ~tp", [Script, R])
                    end
            end,
    Deps = case lists:keyfind(deps, 1, Final) of {deps, D} when is_list(D) -> D; _ -> [] end,
    lists:foreach(fun(Dep) -> print_dep(Dep) end, Deps),
    Plugins = lists:append([P || K <- [plugins, project_plugins], {K1, P} <- Final, K1 =:= K, is_list(P)]),
    lists:foreach(fun(P) -> tagged(["plugin\t", hex(io_lib:format("~0tp", [P]))]) end, Plugins).

tagged(Line) -> io:format("${HELPER_ANSWER_PREFIX}\t~ts~n", [Line]).

print_dep(Dep) ->
    try dep(Dep) of
        {Name, Kind, Url, Rev} ->
            tagged(["dep\t", hex(atom_to_list(Name)), "\t", Kind, "\t", hex(to_chars(Url)), "\t", hex(to_chars(Rev))]);
        skip ->
            ok
    catch _:_ ->
        ok
    end.

to_chars(B) when is_binary(B) -> unicode:characters_to_list(B);
to_chars(L) when is_list(L) -> L.

dep(A) when is_atom(A) -> {A, "hex", "", ""};
dep({A, V}) when is_atom(A), (is_list(V) orelse is_binary(V)) -> {A, "hex", "", V};
dep({A, {pkg, P}}) when is_atom(A) -> {A, "hex", pkg_name(P), ""};
dep({A, V, {pkg, P}}) when is_atom(A) -> {A, "hex", pkg_name(P), V};
dep({A, Source}) when is_atom(A), is_tuple(Source) -> scm(A, Source);
dep({A, _, Source}) when is_atom(A), is_tuple(Source) -> scm(A, Source);
dep({A, _, Source, _}) when is_atom(A), is_tuple(Source) -> scm(A, Source);
dep(_) -> skip.

scm(A, {git, Url}) -> {A, "git", Url, ""};
scm(A, {git, Url, {tag, T}}) -> {A, "git-tag", Url, T};
scm(A, {git, Url, {branch, B}}) -> {A, "git-branch", Url, B};
scm(A, {git, Url, {ref, R}}) -> {A, "git-ref", Url, R};
scm(A, {git, Url, ""}) -> {A, "git", Url, ""};
scm(A, {git, Url, B}) when is_list(B) -> {A, "git-branch", Url, B};
scm(A, {git, Url, Rev, _}) -> scm(A, {git, Url, Rev});
scm(A, _) -> {A, "other", "", ""}.

pkg_name(P) when is_atom(P) -> atom_to_list(P);
pkg_name(P) when is_binary(P) -> unicode:characters_to_list(P);
pkg_name(P) when is_list(P) -> P.
`;

/** Parses the helper's `key<TAB>hex` lines into an object (dep lines into `deps`). */
export function parseHelperAnswer(text) {
  /**
   * @type {{ name?: string, vsn?: string, app?: string, deps: Array<{ name: string, kind: string, url: string, rev: string }>,
   *   plugins: string[] }}
   * A hex dep's url is its package name when that differs from the application's ({Name, {pkg, Package}}), else ''.
   */
  const answer = { deps: [], plugins: [] };
  const unhex = (h) => Buffer.from(h, 'hex').toString('utf8');
  for (const line of text.split('\n')) {
    const parts = line.split('\t');
    if (parts[0] === 'dep' && parts.length === 5) {
      answer.deps.push({ name: unhex(parts[1]), kind: parts[2], url: unhex(parts[3]), rev: unhex(parts[4]) });
    } else if (parts[0] === 'plugin' && parts.length === 2 && /^[0-9a-f]*$/.test(parts[1])) {
      answer.plugins.push(unhex(parts[1]));
    } else if (['name', 'vsn', 'app'].includes(parts[0]) && parts.length === 2 && /^[0-9a-f]*$/.test(parts[1])) {
      answer[parts[0]] = unhex(parts[1]);
    }
  }
  return answer;
}

/** Fixed code (nothing interpolated): the release, root and ERTS version of the `erl` it runs on. */
export const PROBE_EVAL =
  'io:format("~s~n~ts~n~s~n", [erlang:system_info(otp_release), code:root_dir(), erlang:system_info(version)]), halt().';

/** The full OTP version of an installation ("25.2.3"), from releases/<rel>/OTP_VERSION; '' when unknown. */
export function readOtpVersion(root, release) {
  const releases = path.join(root, 'releases');
  let candidates = release ? [release] : [];
  if (!release) {
    try {
      candidates = fs.readdirSync(releases).filter((d) => /^\d+$/.test(d)).sort(compareVersions).reverse();
    } catch {
      return '';
    }
  }
  for (const rel of candidates) {
    try {
      const text = fs.readFileSync(path.join(releases, rel, 'OTP_VERSION'), 'utf8').trim();
      if (/^[0-9][0-9A-Za-z.-]*$/.test(text)) return text;
    } catch {
      // try the next
    }
  }
  return '';
}

/** True when `requested` is `version` or a prefix of it ending at a dot ("25.2" of "25.2.3", not "25.2" of "25.20"). */
export function releaseMatches(requested, version) {
  return version === requested || version.startsWith(`${requested}.`);
}

/**
 * Picks the installation for a requested release: the one named exactly so, else the newest whose name or full
 * version it prefixes at a dot boundary.
 * @param {string} requested
 * @param {Array<{ name: string, version: string }>} installs
 */
export function pickRelease(requested, installs) {
  const exact = installs.find((i) => i.name === requested);
  if (exact) return exact;
  const matching = installs.filter((i) => releaseMatches(requested, i.name) || releaseMatches(requested, i.version));
  matching.sort((a, b) => compareVersions(b.version || b.name, a.version || a.name));
  return matching[0] ?? null;
}
