//! From the manifest as written (`raw.rs`) to the validated [`Manifest`]: every check that is
//! not about TOML types, each failing with the line and what to do. Application, variables and
//! triggers are here; a component's own checks are in `component.rs`.

mod component;

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use crate::error::{ErrorKind, Lines, ManifestError};
use crate::ids::{IdStyle, check_id, closest, suggest_id};
use crate::model::*;
use crate::raw::*;
use crate::route::check_route;

type Result<T> = std::result::Result<T, ManifestError>;

const ROUTE_EXAMPLES: &str = "write it like \"/hello\", \"/api/users/:id\" or \"/static/...\"";

pub(crate) fn validate(file: &str, text: &str, raw: RawManifest) -> Result<Manifest> {
    let mut checker = Checker {
        file,
        lines: Lines::new(text),
        variables: BTreeSet::new(),
        declared: BTreeSet::new(),
        components: BTreeMap::new(),
    };
    let application = checker.application(raw.application)?;
    let variables = checker.variables(raw.variables)?;
    for (key, component) in raw.component.0 {
        let line = checker.lines.of(&key);
        let id = key.into_inner();
        if let Err(why) = check_id(&id, IdStyle::Kebab) {
            let example = suggest_id(&id, IdStyle::Kebab).unwrap_or_else(|| "my-api".to_string());
            return Err(checker.error(
                line,
                format!("`{id}` is not a valid component id: {why}"),
                format!(
                    "use kebab-case: lowercase words of letters and digits joined by '-', \
                     starting with a letter, e.g. [component.{example}]"
                ),
            ));
        }
        let component = checker.component(id.clone(), &format!("[component.{id}]"), component)?;
        checker.declared.insert(id.clone());
        checker.components.insert(id, component);
    }
    let mut http_triggers = Vec::new();
    for (index, trigger) in raw.trigger.http.into_iter().enumerate() {
        http_triggers.push(checker.http_trigger(index + 1, trigger)?);
    }
    let mut other_triggers = Vec::new();
    for (trigger_type, triggers) in raw.trigger.other {
        for (index, trigger) in triggers.into_iter().enumerate() {
            other_triggers.push(checker.other_trigger(&trigger_type, index + 1, trigger)?);
        }
    }
    Ok(Manifest {
        application,
        variables,
        http_triggers,
        other_triggers,
        components: checker.components,
    })
}

struct Checker<'a> {
    file: &'a str,
    lines: Lines<'a>,
    /// Names declared in `[variables]`.
    variables: BTreeSet<String>,
    /// Ids declared as `[component.<id>]` (inline components cannot be referred to).
    declared: BTreeSet<String>,
    components: BTreeMap<String, Component>,
}

impl Checker<'_> {
    fn error(
        &self,
        line: usize,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ManifestError {
        ManifestError::new(ErrorKind::Invalid, self.file, Some(line), problem, fix)
    }

    fn application(&self, raw: Spanned<RawApplication>) -> Result<Application> {
        let raw = raw.into_inner();
        if raw.name.get_ref().trim().is_empty() {
            return Err(self.error(
                self.lines.of(&raw.name),
                "the application name is empty",
                "give the application a name, e.g. name = \"hello\"",
            ));
        }
        Ok(Application {
            name: raw.name.into_inner(),
            version: raw.version,
            description: raw.description,
            authors: raw.authors,
            trigger_settings: raw.trigger,
        })
    }

    fn variables(
        &mut self,
        raw: Entries<Spanned<RawVariable>>,
    ) -> Result<BTreeMap<String, Variable>> {
        let mut variables = BTreeMap::new();
        for (name, variable) in raw.0 {
            let line = self.lines.of(&name);
            let name = name.into_inner();
            if let Err(why) = check_id(&name, IdStyle::LowerSnake) {
                let example =
                    suggest_id(&name, IdStyle::LowerSnake).unwrap_or_else(|| "api_key".to_string());
                return Err(self.error(
                    line,
                    format!("`{name}` is not a valid variable name: {why}"),
                    format!(
                        "use lowercase letters, digits and '_', starting with a letter, e.g. {example}"
                    ),
                ));
            }
            let variable = variable.into_inner();
            if variable.default.is_some() && variable.required {
                return Err(self.error(
                    line,
                    format!("variable `{name}` has both a `default` and `required = true`"),
                    "remove `required = true` to use the default, or remove `default` \
                     if a value must be supplied when the app runs",
                ));
            }
            self.variables.insert(name.clone());
            variables.insert(
                name,
                Variable {
                    default: variable.default,
                    required: variable.required,
                    secret: variable.secret,
                    description: variable.description,
                },
            );
        }
        Ok(variables)
    }

    fn http_trigger(&mut self, index: usize, raw: Spanned<RawHttpTrigger>) -> Result<HttpTrigger> {
        let line = self.lines.of(&raw);
        let raw = raw.into_inner();
        let place = "[[trigger.http]]";
        let route_line = self.lines.of(&raw.route);
        let route = match raw.route.into_inner() {
            StrOr::Str(route) => match check_route(&route) {
                Ok(()) => HttpRoute::Path(route),
                Err(why) => {
                    return Err(self.error(
                        route_line,
                        format!("the route `{route}` is not valid: {why}"),
                        ROUTE_EXAMPLES,
                    ));
                }
            },
            StrOr::Table(RawPrivateRoute { private: true }) => HttpRoute::Private,
            StrOr::Table(RawPrivateRoute { private: false }) => {
                return Err(self.error(
                    route_line,
                    "route = { private = false } does not say where the trigger is reachable",
                    format!("give a path route ({ROUTE_EXAMPLES}), or write {{ private = true }}"),
                ));
            }
        };
        let target = match (raw.component, raw.static_response) {
            (Some(_), Some(response)) => {
                return Err(self.error(
                    self.lines.of(&response),
                    format!("{place} has both `component` and `static_response`"),
                    "keep only one: a trigger either runs a component or returns a fixed response",
                ));
            }
            (None, None) => {
                return Err(self.error(
                    line,
                    format!("{place} has neither `component` nor `static_response`"),
                    "add component = \"<component id>\", or static_response = { body = \"...\" }",
                ));
            }
            (Some(component), None) => {
                HttpTarget::Component(self.component_ref("http", index, place, component)?)
            }
            (None, Some(response)) => {
                if let Some(executor) = &raw.executor {
                    return Err(self.error(
                        self.lines.of(executor),
                        format!("{place} has an `executor` but no component to run"),
                        "remove `executor`: a static_response runs no component",
                    ));
                }
                HttpTarget::StaticResponse(self.static_response(place, response)?)
            }
        };
        let executor = match raw.executor {
            Some(executor) => Some(self.executor(place, executor)?),
            None => None,
        };
        Ok(HttpTrigger {
            route,
            target,
            executor,
            line,
        })
    }

    fn static_response(
        &self,
        place: &str,
        raw: Spanned<RawStaticResponse>,
    ) -> Result<StaticResponse> {
        let raw = raw.into_inner();
        let status = match raw.status_code {
            Some(code) if !(100..=599).contains(code.get_ref()) => {
                return Err(self.error(
                    self.lines.of(&code),
                    format!(
                        "status_code {} in the static_response of {place} is not an HTTP status",
                        code.get_ref()
                    ),
                    "use a status from 100 to 599, e.g. 200 or 404",
                ));
            }
            Some(code) => code.into_inner(),
            None => 200,
        };
        let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        let mut headers = Vec::new();
        for (name, value) in raw.headers.0 {
            let name_line = self.lines.of(&name);
            let name = name.into_inner();
            if name.is_empty() || !name.chars().all(is_token) {
                return Err(self.error(
                    name_line,
                    format!("`{name}` in the static_response headers of {place} is not a valid header name"),
                    "use letters, digits and '-', e.g. \"content-type\"",
                ));
            }
            if value.contains(['\r', '\n', '\0']) {
                return Err(self.error(
                    name_line,
                    format!("the value of header `{name}` in the static_response of {place} contains a line break"),
                    "put the value on one line",
                ));
            }
            headers.push((name, value));
        }
        Ok(StaticResponse {
            status,
            headers,
            body: raw.body,
        })
    }

    fn executor(&self, place: &str, raw: Spanned<RawExecutor>) -> Result<Executor> {
        let raw = raw.into_inner();
        let line = self.lines.of(&raw.kind);
        match raw.kind.get_ref().as_str() {
            "spin" if raw.argv.is_some() || raw.entrypoint.is_some() => Err(self.error(
                line,
                format!("the spin executor of {place} takes no `argv` or `entrypoint`"),
                "remove them, or use { type = \"wagi\", ... } if the component is a Wagi module",
            )),
            "spin" => Ok(Executor::Spin),
            "wagi" => Ok(Executor::Wagi {
                argv: raw.argv,
                entrypoint: raw.entrypoint,
            }),
            other => Err(self.error(
                line,
                format!("unknown executor type `{other}` in {place}"),
                "use { type = \"spin\" } or { type = \"wagi\" }",
            )),
        }
    }

    fn other_trigger(
        &mut self,
        trigger_type: &str,
        index: usize,
        raw: Spanned<RawOtherTrigger>,
    ) -> Result<OtherTrigger> {
        let line = self.lines.of(&raw);
        let raw = raw.into_inner();
        let place = format!("[[trigger.{trigger_type}]]");
        let component = match raw.component {
            Some(component) => Some(self.component_ref(trigger_type, index, &place, component)?),
            None => None,
        };
        Ok(OtherTrigger {
            trigger_type: trigger_type.to_string(),
            component,
            settings: raw.settings,
            line,
        })
    }

    /// Resolves a trigger's `component`: checks a reference, or adds an inline component under
    /// a synthetic id (see [`Manifest::components`]). Returns the id.
    fn component_ref(
        &mut self,
        trigger_type: &str,
        index: usize,
        place: &str,
        raw: Spanned<RawComponentRef>,
    ) -> Result<String> {
        let line = self.lines.of(&raw);
        let span = raw.span();
        match raw.into_inner() {
            StrOr::Str(id) if self.declared.contains(&id) => Ok(id),
            StrOr::Str(id) => {
                let defined: Vec<&str> = self.declared.iter().map(String::as_str).collect();
                let fix = match (closest(&id, defined.iter().copied()), defined.is_empty()) {
                    (Some(near), _) => {
                        format!("did you mean `{near}`? Otherwise define [component.{id}]")
                    }
                    (None, true) => format!("define it with a [component.{id}] table"),
                    (None, false) => format!(
                        "define [component.{id}], or use one of the defined components: {}",
                        defined.join(", ")
                    ),
                };
                Err(self.error(
                    line,
                    format!("{place} refers to component `{id}`, which is not defined"),
                    fix,
                ))
            }
            StrOr::Table(inline) => {
                let base = format!("inline-{trigger_type}-{index}");
                let mut id = base.clone();
                let mut n = 1;
                while self.components.contains_key(&id) {
                    n += 1;
                    id = format!("{base}-{n}");
                }
                let inline = Spanned::new(span, *inline);
                let component = self.component(
                    id.clone(),
                    &format!("the inline component of {place}"),
                    inline,
                )?;
                self.components.insert(id.clone(), component);
                Ok(id)
            }
        }
    }
}

fn located<T>(lines: &Lines<'_>, spanned: Spanned<T>) -> Located<T> {
    Located {
        line: lines.of(&spanned),
        value: spanned.into_inner(),
    }
}
